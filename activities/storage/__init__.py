"""Storage-host activities on storage.<host>: the btrfs share pool and nfs-ganesha exports."""
