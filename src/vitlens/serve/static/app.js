// vitlens web page: draw on the canvas (or upload a file), POST it to /v1/explain, show bars and attention.
"use strict";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const bars = document.getElementById("bars");
const prediction = document.getElementById("prediction");
const errorBox = document.getElementById("error");
const heatmap = document.getElementById("heatmap");
const caption = document.getElementById("heatmap-caption");
const TOP_K = 10;
let classes = 10;
let last = null;          // the latest /v1/explain answer
let inFlight = false;     // one request at a time; a stroke made meanwhile sends again when it ends
let dirty = false;
let drawing = false;
let generation = 0;       // bumped by Clear and by an upload: an answer to an older request is dropped, not shown

function clearCanvas() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = true;
  const [x, y] = point(event);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x, y);
  ctx.stroke();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  ctx.lineTo(x, y);
  ctx.stroke();
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    schedule();
  });
}
canvas.addEventListener("keydown", (event) => {
  if (event.key === "Delete" || event.key === "Backspace") reset();
});
document.getElementById("clear").addEventListener("click", reset);

function setPen() {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

function reset() {
  generation += 1;
  dirty = false;
  clearCanvas();
  setPen();
  last = null;
  bars.replaceChildren();
  prediction.textContent = "Draw something to see the model's answer.";
  heatmap.hidden = true;
  caption.textContent = "";
  errorBox.hidden = true;
}

function schedule() {
  dirty = true;
  if (!inFlight) sendCanvas();
}

function sendCanvas() {
  dirty = false;
  inFlight = true;
  const mine = generation;  // toBlob calls back later: a Clear in between must drop this picture
  canvas.toBlob((blob) => {
    if (mine === generation) send(blob, "canvas.png", mine);
    else inFlight = false;
  }, "image/png");
}

async function send(blob, name, mine = generation) {
  inFlight = true;
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const response = await fetch(`/v1/explain?top_k=${Math.min(TOP_K, classes)}`, { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail ? String(typeof body.detail === "string" ? body.detail
                                                   : JSON.stringify(body.detail)) : response.statusText);
    if (mine !== generation) return;
    errorBox.hidden = true;
    show(body);
  } catch (err) {
    if (mine !== generation) return;
    errorBox.textContent = `The server could not read that: ${err.message}`;
    errorBox.hidden = false;
  } finally {
    inFlight = false;
    if (dirty) sendCanvas();
  }
}

function show(answer) {
  last = answer;
  const best = answer.top[0];
  prediction.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = best.class;
  prediction.append("It looks like ", strong, ` (${(best.probability * 100).toFixed(1)} %)`);
  bars.replaceChildren(...answer.top.map(({ class: name, probability }) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", (probability * 100).toFixed(1));
    track.setAttribute("aria-label", `probability of ${name}`);
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = `${(probability * 100).toFixed(2)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(probability * 100).toFixed(1)} %`;
    item.append(label, track, value);
    return item;
  }));
  showMap();
}

function showMap() {
  if (!last) return;
  const key = document.querySelector('input[name="map"]:checked').value;
  const [rows, cols] = last.grid;
  heatmap.src = `data:image/png;base64,${last.images[key]}`;
  const what = { rollout_png: "attention rollout of the class token", last_layer_png: "last layer's class-token "
                 + "attention, mean over heads", input_png: "the model's input" }[key];
  heatmap.alt = `${what} over the ${rows}×${cols} patch grid, for the prediction ${last.label}`;
  caption.textContent = key === "input_png" ? `What the model sees: ${rows}×${cols} patches.`
    : `Brighter patches get more of the class token's attention (${rows}×${cols} patches).`;
  heatmap.hidden = false;
}
for (const radio of document.querySelectorAll('input[name="map"]')) radio.addEventListener("change", showMap);

document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    clearCanvas();
    const scale = Math.min(canvas.width / img.width, canvas.height / img.height);
    const w = img.width * scale, h = img.height * scale;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
    setPen();
  };
  img.src = url;
  generation += 1;
  dirty = false;
  send(file, file.name);
  event.target.value = "";
});

fetch("/v1/model").then((r) => r.json()).then((info) => {
  classes = info.class_names.length;
  const [h, w] = info.image_size;
  document.getElementById("model-info").textContent =
    `Model: ${info.checkpoint ? info.checkpoint.split(/[\\/]/).filter(Boolean).pop() : "in memory"} · ${info.parameters.toLocaleString("en")} parameters · ` +
    `${h}×${w} images in ${info.grid[0]}×${info.grid[1]} patches of ${info.patch_size}×${info.patch_size} · ` +
    `classes ${info.class_names.join(", ")}`;
}).catch(() => { document.getElementById("model-info").textContent = "model information unavailable"; });

reset();
