// The page works without this script; with it, the upload shows its progress, the mapping
// says at once what still blocks the import, and an import's progress is pushed live.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const upload = document.getElementById("new-import");
  if (upload) enhanceUpload(upload);
  const mapping = document.getElementById("mapping");
  if (mapping) enhanceMapping(mapping);
  const progress = document.getElementById("progress");
  if (progress && progress.dataset.ended !== "true") followProgress(progress);
});

function humanBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1).replace(/\.0$/, "")} ${units[unit]}`;
}

function showFormError(form, message) {
  let box = document.getElementById("form-error");
  if (!box) {
    box = document.createElement("div");
    box.id = "form-error";
    box.className = "notice error";
    box.setAttribute("role", "alert");
    form.parentNode.insertBefore(box, form);
  }
  box.textContent = "";
  const text = document.createElement("p");
  text.textContent = message;
  box.appendChild(text);
  box.hidden = false;
}

// Sends the form with XMLHttpRequest to show how much of the file is uploaded; the server's
// answer (the mapping page, or the form with a reason) replaces the page.
function enhanceUpload(form) {
  const input = form.querySelector("input[type=file]");
  const drop = form.querySelector(".drop");
  const max = Number(form.dataset.maxBytes);
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault(); drop.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("dragging")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) input.files = event.dataTransfer.files;
  });
  form.addEventListener("submit", (event) => {
    const file = input.files[0];
    if (!file) return;
    if (max && file.size > max) {
      event.preventDefault();
      showFormError(form, `${file.name} is ${humanBytes(file.size)}; this page accepts files up to ${humanBytes(max)}. Split it into smaller files.`);
      return;
    }
    if (file.size === 0) {
      event.preventDefault();
      showFormError(form, `${file.name} is empty: choose a CSV file with a header row.`);
      return;
    }
    event.preventDefault();
    // Sent before the file, so that the server can refuse a file over the limits unsent.
    const size = form.querySelector("input[name=file_size]");
    if (size) size.value = String(file.size);
    const status = form.querySelector(".upload-progress");
    const bar = status.querySelector("progress");
    const text = status.querySelector(".upload-text");
    const button = form.querySelector("button[type=submit]");
    status.hidden = false;
    button.disabled = true;
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      const percent = Math.floor((progress.loaded * 100) / progress.total);
      bar.value = percent;
      text.textContent = `Uploading ${file.name}: ${percent}% of ${humanBytes(file.size)}`;
    });
    request.addEventListener("load", () => {
      if (request.status < 400 && request.responseURL) {
        window.location.assign(request.responseURL);
        return;
      }
      document.open();
      document.write(request.responseText);
      document.close();
    });
    const lost = () => {
      button.disabled = false;
      status.hidden = true;
      showFormError(form, "The upload stopped before the end of the file (the connection was lost). Nothing was imported; load the file again.");
    };
    request.addEventListener("error", lost);
    request.addEventListener("abort", lost);
    request.send(new FormData(form));
  });
}

// Keeps IMPORT and DRY RUN disabled, with the reason, while a required attribute has no
// column or an attribute has two; the server checks the same on every press.
function enhanceMapping(form) {
  const required = (form.dataset.required || "").split(",").filter(Boolean);
  const selects = Array.from(form.querySelectorAll("select[name^='column.']"));
  const buttons = Array.from(form.querySelectorAll("button[value=import], button[value=dry_run]"));
  const reason = document.getElementById("blocked-reason");
  const labelOf = (key) => {
    const option = selects[0] && selects[0].querySelector(`option[value="${CSS.escape(key)}"]`);
    return option ? option.textContent.replace(/ \(required\)$/, "") : key;
  };
  const columnOf = (select) => form.querySelector(`label[for="${select.id}"]`).textContent;
  const check = () => {
    const chosen = new Map();
    selects.forEach((select) => {
      if (!select.value) return;
      if (!chosen.has(select.value)) chosen.set(select.value, []);
      chosen.get(select.value).push(columnOf(select));
    });
    const reasons = [];
    required.filter((key) => !chosen.has(key)).forEach((key) => {
      reasons.push(`${labelOf(key)} is required: choose the column that holds it.`);
    });
    chosen.forEach((columns, key) => {
      if (columns.length > 1) reasons.push(`${labelOf(key)} is chosen for more than one column (${columns.join(", ")}).`);
    });
    reason.textContent = "";
    reasons.forEach((text) => {
      const line = document.createElement("p");
      line.textContent = text;
      reason.appendChild(line);
    });
    reason.hidden = reasons.length === 0;
    buttons.forEach((button) => { button.disabled = reasons.length > 0; });
  };
  selects.forEach((select) => select.addEventListener("change", check));
  // Encoding and separator are read again only on "Read again": a reload on change would
  // move a keyboard user off the page at the first arrow key (WCAG 3.2.2, on input).
}

// Follows the import's events; the browser reconnects by itself after a network failure and
// sends the last event id, so nothing is shown twice. The summary reloads the page.
function followProgress(section) {
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const started = { at: null, bytes: 0, rows: 0 };
  const source = new EventSource(section.dataset.events);
  const show = (event) => {
    const progress = JSON.parse(event.data);
    field("state").textContent = progress.state;
    if (progress.percent !== null) {
      field("percent").value = progress.percent;
      field("percent-text").textContent = `${progress.percent}% of the file`;
    }
    field("rows").textContent = progress.rows;
    field("failed").textContent = progress.failed;
    const waiting = field("waiting_for");
    waiting.hidden = !progress.waiting_for;
    waiting.textContent = progress.waiting_for || "";
    const rows = Number(progress.rows.replace(/\D/g, ""));
    const now = Date.now();
    if (started.at === null) { Object.assign(started, { at: now, bytes: progress.bytes_done, rows }); return; }
    const seconds = (now - started.at) / 1000;
    if (seconds < 1 || rows <= started.rows) return;
    const rate = (rows - started.rows) / seconds;
    let text = ` · ${Math.round(rate).toLocaleString("en")} rows/s`;
    const bytesRate = (progress.bytes_done - started.bytes) / seconds;
    if (progress.bytes_total && bytesRate > 0) {
      const left = Math.max(0, (progress.bytes_total - progress.bytes_done) / bytesRate);
      text += left < 60 ? ` · about ${Math.ceil(left)} s left` : ` · about ${Math.ceil(left / 60)} min left`;
    }
    field("rate").textContent = text;
  };
  source.addEventListener("progress", show);
  source.addEventListener("summary", () => { source.close(); window.location.reload(); });
  source.addEventListener("gone", (event) => {
    source.close();
    field("waiting_for").hidden = false;
    field("waiting_for").textContent = event.data;
  });
}
