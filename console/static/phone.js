// The browser-call island: microphone → Media Streams over a WebSocket → the bot; the bot's audio → speakers.
// The page plays Twilio's part of the protocol, including echoing each mark only once the audio queued
// before it has actually been played, which is what the bot's turn-taking relies on.
import { ULAW_DECODE } from "./ulaw.js";

const root = document.getElementById("phone");
const startButton = document.getElementById("call-start");
const hangupButton = document.getElementById("call-hangup");
const statusLabel = document.getElementById("phone-status");
const callSid = root.dataset.callSid;
const streamSid = root.dataset.streamSid;

const LEAD_S = 0.05; // scheduling margin so the first buffer of a burst does not start in the past

// Exposed for the end-to-end tests (and curious developers): counters only, no audio.
const stats = (window.voicebotPhone = { state: "idle", framesSent: 0, framesPlayed: 0, marksEchoed: 0, clears: 0 });

let socket = null;
let audio = null;
let microphone = null;
let worklet = null;
let sequence = 0;
let chunk = 0;
let startedAt = 0;
let playHead = 0;
let sources = new Set();
let marks = []; // {name, at}: echo when the audio context has played past `at`
let markTimer = null;

function setState(state, text) {
  stats.state = state;
  statusLabel.textContent = text || state;
  root.dataset.state = state;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function nextSequence() {
  sequence += 1;
  return String(sequence);
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sendFrame(buffer) {
  chunk += 1;
  send({
    event: "media",
    sequenceNumber: nextSequence(),
    media: {
      track: "inbound",
      chunk: String(chunk),
      timestamp: String(Math.round(performance.now() - startedAt)),
      payload: toBase64(new Uint8Array(buffer)),
    },
    streamSid,
  });
  stats.framesSent += 1;
}

function play(payload) {
  const bytes = fromBase64(payload);
  if (!bytes.length) return;
  const buffer = audio.createBuffer(1, bytes.length, 8000);
  const samples = buffer.getChannelData(0);
  for (let i = 0; i < bytes.length; i++) samples[i] = ULAW_DECODE[bytes[i]];
  const source = audio.createBufferSource();
  source.buffer = buffer;
  source.connect(audio.destination);
  playHead = Math.max(playHead, audio.currentTime + LEAD_S);
  source.start(playHead);
  playHead += buffer.duration;
  sources.add(source);
  source.onended = () => {
    sources.delete(source);
    stats.framesPlayed += bytes.length / 160;
  };
}

function echoMark(name) {
  send({ event: "mark", sequenceNumber: nextSequence(), streamSid, mark: { name } });
  stats.marksEchoed += 1;
}

function echoPlayedMarks() {
  // Audio scheduled at t leaves the speaker at t + outputLatency.
  const heard = audio.currentTime - (audio.outputLatency || 0);
  while (marks.length && marks[0].at <= heard) echoMark(marks.shift().name);
}

function clearPlayback() {
  for (const source of sources) source.stop();
  sources = new Set();
  playHead = audio.currentTime;
  while (marks.length) echoMark(marks.shift().name); // Twilio returns pending marks after a clear
  stats.clears += 1;
}

function onMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.event === "media" && message.media) play(message.media.payload);
  else if (message.event === "mark" && message.mark) marks.push({ name: message.mark.name, at: playHead });
  else if (message.event === "clear") clearPlayback();
}

async function start() {
  startButton.disabled = true;
  setState("connecting", "connecting…");
  try {
    audio = new AudioContext({ latencyHint: "interactive" });
    await audio.resume();
    microphone = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await audio.audioWorklet.addModule(root.dataset.worklet);
    const response = await fetch(`/console/browser-call/${callSid}/token`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrftoken": document.body.dataset.csrf },
    });
    if (!response.ok) {
      // The server says why it cannot take the call (no speech-to-text, …) and what to do.
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || `token refused (${response.status})`);
    }
    const { token, accountSid } = await response.json();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    socket.onmessage = onMessage;
    socket.onclose = (event) => finish(event.reason ? `call ended: ${event.reason}` : "call ended");
    socket.onopen = () => {
      startedAt = performance.now();
      send({ event: "connected", protocol: "Call", version: "1.0.0" });
      send({
        event: "start",
        sequenceNumber: nextSequence(),
        start: {
          accountSid,
          streamSid,
          callSid,
          tracks: ["inbound"],
          customParameters: { token, transport: "browser", caller: "browser" },
          mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
        },
        streamSid,
      });
      worklet = new AudioWorkletNode(audio, "mic-capture", { numberOfOutputs: 1 });
      worklet.port.onmessage = (e) => sendFrame(e.data);
      const silent = audio.createGain();
      silent.gain.value = 0; // the worklet must be pulled by the graph to run, but must not be heard
      audio.createMediaStreamSource(microphone).connect(worklet).connect(silent).connect(audio.destination);
      markTimer = setInterval(echoPlayedMarks, 20);
      hangupButton.disabled = false;
      setState("in-call", "in call");
    };
  } catch (error) {
    finish(`could not start: ${error.message}`);
  }
}

function hangup() {
  send({ event: "stop", sequenceNumber: nextSequence(), streamSid, stop: { accountSid: "", callSid } });
  finish("hung up");
}

function finish(text) {
  if (stats.state === "ended") return;
  hangupButton.disabled = true;
  if (markTimer) clearInterval(markTimer);
  if (worklet) worklet.port.postMessage("stop");
  if (microphone) for (const track of microphone.getTracks()) track.stop();
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  if (audio) audio.close();
  setState("ended", text);
  // A refused or ended call must never keep showing as live in the summary above.
  const status = document.getElementById("call-status");
  if (status && status.dataset.live !== "no") {
    status.dataset.live = "no";
    status.textContent = text.startsWith("could not start") ? "not started" : "ended";
  }
}

startButton.addEventListener("click", start);
hangupButton.addEventListener("click", hangup);
