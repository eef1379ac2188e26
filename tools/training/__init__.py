"""Training: one loop (loop.py) for every model, one small spec per model (specs/), and the channel
in the loop (channel_in_the_loop.py) for the codecs."""
