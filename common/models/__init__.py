"""The project's neural networks (all trained by `semcom train`)."""
