"""One module per backbone; each registers itself with `@register_backbone`."""
