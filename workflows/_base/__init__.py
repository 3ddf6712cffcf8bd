"""The frames every workflow shares: the compensation list, how steps are called, the
instance action frame."""
