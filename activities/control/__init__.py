"""Control-plane activities on the control queue: database steps, the scheduler, ledger
and reconciler judgements."""
