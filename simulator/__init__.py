"""A Twilio stand-in: places calls against a running bot over the Media Streams protocol and measures them."""
