#!/usr/bin/env node
// The brightness detector in JavaScript (Node.js, no packages). Needs -p image_format=ppm:
// binary PPM is a short text header ("P6 <width> <height> <maxval>") and then RGB bytes.
const fs = require("fs");
const readline = require("readline");

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

function meanBrightness(path) {
  const data = fs.readFileSync(path);
  let pos = 0;
  const token = () => {
    while (/\s/.test(String.fromCharCode(data[pos]))) pos++;
    const start = pos;
    while (!/\s/.test(String.fromCharCode(data[pos]))) pos++;
    return data.toString("latin1", start, pos);
  };
  if (token() !== "P6") throw new Error(`${path} is not a binary PPM`);
  const [width, height, maxval] = [token(), token(), token()].map(Number);
  const pixels = data.subarray(pos + 1, pos + 1 + width * height * 3);
  let sum = 0;
  for (const value of pixels) sum += value;
  return sum / pixels.length / maxval;
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const message = JSON.parse(line);
  if (message.type === "hello" && message.image_format !== "ppm") {
    send({ type: "error", message: "run me with -p image_format=ppm" });
  } else if (message.type === "hello") {
    send({ type: "ready", name: "brightness-js", version: "1.0" });
  } else if (message.type === "score") {
    send({ id: message.id, score: meanBrightness(message.path) });
  } else if (message.type === "bye") {
    process.exit(0);
  }
});
