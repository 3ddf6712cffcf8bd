"""Request and response models, one module per resource; requests are strict (no
coercion: `{"name": 5}` is refused, not turned into "5") and refuse unknown keys."""
