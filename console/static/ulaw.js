// G.711 μ-law for the browser-call island, by table: one lookup per sample in both directions.
// Shared by the page (decoding the bot's audio) and the AudioWorklet (encoding the microphone).

const BIAS = 0x84;
const CLIP = 32635;

function encodeSample(sample) {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(sign ? -sample : sample, CLIP) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function decodeSample(byte) {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4)) - BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

/** Indexed by the int16 sample as uint16 (sample & 0xffff). */
export const ULAW_ENCODE = new Uint8Array(65536);
for (let i = 0; i < 65536; i++) ULAW_ENCODE[i] = encodeSample(i < 32768 ? i : i - 65536);

/** μ-law byte → float in [-1, 1) for Web Audio. */
export const ULAW_DECODE = new Float32Array(256);
for (let i = 0; i < 256; i++) ULAW_DECODE[i] = decodeSample(i) / 32768;
