// AudioWorklet: microphone at the context's rate → 8 kHz μ-law, posted as 20 ms frames (160 bytes).
// Runs on the audio thread, so it only filters, resamples and encodes; the page does the networking.
import { ULAW_ENCODE } from "./ulaw.js";

const OUT_RATE = 8000;
const FRAME = 160;

/** RBJ biquad low-pass: keeps the telephone band and removes what would alias when decimating. */
class LowPass {
  constructor(rate, cutoff) {
    const w0 = (2 * Math.PI * cutoff) / rate;
    const alpha = Math.sin(w0) / (2 * Math.SQRT1_2);
    const cos = Math.cos(w0);
    const a0 = 1 + alpha;
    this.b0 = (1 - cos) / 2 / a0;
    this.b1 = (1 - cos) / a0;
    this.b2 = this.b0;
    this.a1 = (-2 * cos) / a0;
    this.a2 = (1 - alpha) / a0;
    this.x1 = this.x2 = this.y1 = this.y2 = 0;
  }
  step(x) {
    const y = this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2;
    this.x2 = this.x1; this.x1 = x; this.y2 = this.y1; this.y1 = y;
    return y;
  }
}

class MicCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample (e.g. 6 at 48 kHz)
    this.filters = this.step > 1 ? [new LowPass(sampleRate, 3400), new LowPass(sampleRate, 3400)] : [];
    this.next = 0; // position of the next output sample, in input samples since the last one consumed
    this.previous = 0;
    this.frame = new Uint8Array(FRAME);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (e) => { if (e.data === "stop") this.running = false; };
  }

  emit(value) {
    const s = Math.max(-32768, Math.min(32767, Math.round(value * 32767)));
    this.frame[this.filled++] = ULAW_ENCODE[s & 0xffff];
    if (this.filled === FRAME) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Uint8Array(FRAME);
      this.filled = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        let x = channel[i];
        for (const f of this.filters) x = f.step(x);
        // Linear interpolation between the previous and this input sample at each output instant.
        while (this.next <= 1) {
          this.emit(this.previous + (x - this.previous) * this.next);
          this.next += this.step;
        }
        this.next -= 1;
        this.previous = x;
      }
    }
    return this.running;
  }
}

registerProcessor("mic-capture", MicCapture);
