from vmflow.cli import main

main()
