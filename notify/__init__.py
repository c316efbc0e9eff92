"""Emergency-contact notifications: planning, providers, delivery with retries."""
