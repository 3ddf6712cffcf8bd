"""Host activities on hv.<host>: disks, domains, power, rebuild, snapshot copy, image
transfer, the thaw guard."""
