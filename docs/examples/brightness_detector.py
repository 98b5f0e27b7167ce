#!/usr/bin/env python3
"""A facebench command detector: score = mean brightness / 255 (docs/command-protocol.md)."""
import json
import sys

from PIL import Image, ImageStat


def reply(message):
    print(json.dumps(message), flush=True)  # stdout is the protocol channel: log to stderr


for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "hello":
        reply({"type": "ready", "name": "brightness", "version": "1.0"})
    elif message["type"] == "score":
        with Image.open(message["path"]) as image:
            mean = sum(ImageStat.Stat(image.convert("RGB")).mean) / 3
        reply({"id": message["id"], "score": mean / 255})
    elif message["type"] == "bye":
        break
