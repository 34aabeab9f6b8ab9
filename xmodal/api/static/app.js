// xmodal web page: plain JavaScript, no external resources (it must work offline).
"use strict";
(function () {
  const KEY_STORE = "xmodal.apiKey";
  const $ = (id) => document.getElementById(id);
  const state = { key: localStorage.getItem(KEY_STORE) || "", principal: null };

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + state.key }, opts.headers);
    const resp = await fetch(path, opts);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const msg = body && body.error ? body.error.message : "HTTP " + resp.status;
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  // ---- key prompt ------------------------------------------------------------------------
  function askKey(message) {
    $("key-error").textContent = message || "";
    $("key-input").value = "";
    const dlg = $("key-dialog");
    if (!dlg.open) dlg.showModal();
    $("key-input").focus();
  }

  async function useKey(key) {
    const mine = key.trim();
    state.key = mine;
    let principal;
    try {
      principal = await api("/me");
    } catch (err) {
      if (state.key !== mine) return false; // another key was entered or forgotten meanwhile
      state.principal = null;
      $("who").textContent = "no key";
      askKey(err.message);
      return false;
    }
    if (state.key !== mine) return false;
    state.principal = principal;
    localStorage.setItem(KEY_STORE, state.key);
    $("who").textContent = state.principal.principal + (state.principal.admin ? " (admin)" : "");
    $("key-dialog").close();
    return true;
  }

  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    useKey($("key-input").value);
  });
  $("key-forget").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORE);
    state.key = "";
    state.principal = null;
    $("who").textContent = "no key";
    $("results").replaceChildren();
    askKey("");
  });
  $("who").addEventListener("click", () => askKey(""));

  // ---- results ---------------------------------------------------------------------------
  function fmtTime(s) {
    const m = Math.floor(s / 60);
    const r = (s - m * 60).toFixed(1).padStart(4, "0");
    return m + ":" + r;
  }

  function hitName(hit) {
    return (hit.metadata && hit.metadata.name) || hit.uri.split("/").pop();
  }

  function card(hit) {
    const el = document.createElement("article");
    el.className = "hit";
    el.dataset.id = hit.id;
    el.dataset.name = hitName(hit);
    el.dataset.modality = hit.modality;
    el.title = hitName(hit) + " — score " + hit.score.toFixed(3);
    const thumb = document.createElement("div");
    thumb.className = "thumb " + hit.modality;
    if (hit.modality === "image") {
      const img = document.createElement("img");
      img.src = hit.preview_url;
      img.alt = hitName(hit);
      img.loading = "lazy";
      thumb.append(img);
    } else if (hit.modality === "audio") {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "metadata";
      const start = hit.start || 0;
      audio.src = hit.preview_url + (start > 0 ? "#t=" + start : "");
      audio.addEventListener("loadedmetadata", () => { if (start > 0) audio.currentTime = start; }, { once: true });
      thumb.append(audio);
      if (hit.start !== null && hit.start !== undefined) {
        const at = document.createElement("span");
        at.className = "at";
        at.textContent = "match at " + fmtTime(hit.start) + (hit.end ? "–" + fmtTime(hit.end) : "");
        thumb.append(at);
      }
    }
    if (hit.modality === "text" || (hit.snippet && hit.modality !== "audio" && hit.modality !== "image")) {
      thumb.textContent = (hit.snippet || "").slice(0, 320);
    }
    if (hit.page !== null && hit.page !== undefined) {  // a PDF page: its picture, and which page
      const img = document.createElement("img");
      img.src = hit.preview_url + "&page=" + hit.page;
      img.alt = hitName(hit) + ", page " + hit.page;
      img.loading = "lazy";
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = "page " + hit.page;
      thumb.textContent = "";
      thumb.append(img, at);
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = hitName(hit);
    const kind = document.createElement("div");
    kind.className = "kind";
    kind.textContent = hit.modality + (hit.matched && hit.matched !== hit.modality ? " · matched " + hit.matched : "");
    if (hit.snippet && hit.modality !== "text") kind.textContent += " · “" + hit.snippet.slice(0, 60) + "”";
    meta.append(name, kind);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    el.append(thumb, meta, score);
    return el;
  }

  function show(result, label) {
    const grid = $("results");
    grid.replaceChildren(...result.hits.map(card));
    setStatus(result.hits.length ? result.hits.length + " results for " + label : "no results for " + label);
  }

  async function run(body, label) {
    if (!state.principal) { askKey("a key is needed to search"); return; }
    setStatus("searching…");
    try {
      show(await api("/search", { method: "POST", body: body }), label);
    } catch (err) {
      if (err.status === 401) askKey(err.message);
      setStatus(err.message, true);
    }
  }

  function commonFields(form) {
    form.append("k", $("k").value);
    if ($("modality").value) form.append("modality", $("modality").value);
    return form;
  }

  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("query").value.trim();
    if (!text) { setStatus("type something to search for", true); return; }
    const form = commonFields(new FormData());
    form.append("text", text);
    if ($("mode").value !== "dense") form.append("mode", $("mode").value);  // files: by meaning only
    run(form, "“" + text + "”");
  });

  function searchFile(file) {
    if (!file) return;
    const kind = file.type.startsWith("audio/") ? "audio" : file.type.startsWith("image/") ? "image" : "file";
    const form = commonFields(new FormData());
    form.append(kind, file, file.name || "query");
    run(form, file.name || "the dropped file");
  }

  const drop = $("drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    searchFile(ev.dataTransfer && ev.dataTransfer.files[0]);
  });
  $("file-input").addEventListener("change", (ev) => searchFile(ev.target.files[0]));

  // ---- start -----------------------------------------------------------------------------
  if (state.key) useKey(state.key); else askKey("");
})();
