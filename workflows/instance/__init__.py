"""One workflow per instance operation (launch, delete, power actions, rescue, rebuild,
snapshot)."""
