"""The hand-written HTTP/1.1 client, kept only to measure it against the aiohttp one."""
