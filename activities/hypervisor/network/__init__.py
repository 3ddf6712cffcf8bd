"""Guest networks on a hypervisor host: bridges, VXLAN, DHCP, NICs (issue 12)."""
