"""The libvirt layer: the connection, the domain wrapper and the pure domain-XML builder."""
