// The page only shows and forwards: every decision is made by the simulator behind /simulator/api.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { id: null, waiting: null, buffer: "", busy: false };
  const transcript = $("transcript");

  function say(text) {
    if (!$("sound").checked || !("speechSynthesis" in window)) return;
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "ru-RU";
    window.speechSynthesis.speak(utterance);
  }

  function line(kind, text, exchange) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    if (exchange) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = `${exchange.method} ${new URL(exchange.url).pathname} → ${exchange.status}`;
      const request = document.createElement("pre");
      request.textContent = Object.entries(exchange.params).map(([k, v]) => `${k}=${v}`).join("\n");
      const twiml = document.createElement("pre");
      twiml.textContent = exchange.twiml;
      details.append(summary, request, twiml);
      item.append(details);
    }
    transcript.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function show(data) {
    let exchanges = data.exchanges.slice();
    for (const event of data.events) {
      if (event.type === "request") {
        const exchange = exchanges.shift();
        if (exchange && !exchange.url.endsWith("/voice/status")) line("request", "", exchange);
      } else if (event.type === "say") { line("say", event.text); say(event.text); }
      else if (event.type === "play") {
        if (event.text) { line("say", `${event.text} ♪ recorded`); say(event.text); }
        else line("request", `♪ play ${event.url}`);
      }
      else if (event.type === "gather") {
        const got = event.got === null || event.got === undefined ? "(silence)" : event.got || "(nothing)";
        line("caller", `You: ${got}`);
      } else if (event.type === "dial") line("dial", `☎ Transfer to ${event.to.join(", ")}${event.outcome ? " — " + event.outcome : ""}`);
      else if (event.type === "hangup") line("end", event.by === "caller" ? "You hung up." : "The hotline hung up.");
      else if (event.type === "error" || event.type === "warning") line("error", event.message);
      else if (event.type === "pause") line("request", `… pause ${event.length} s`);
    }
    for (const item of transcript.querySelectorAll("li.request")) if (!item.textContent && !item.querySelector("details")) item.remove();
    state.waiting = data.waiting;
    state.buffer = "";
    $("entry").textContent = "";
    const inCall = !data.ended;
    $("hangup").disabled = !inCall;
    $("dial").textContent = inCall ? "Call" : (state.id ? "Redial" : "Call");
    $("dial").disabled = inCall;
    const w = data.waiting;
    $("outcomes").hidden = !(w && w.verb === "dial");
    for (const b of document.querySelectorAll("#keypad button, #silence, #speech button")) b.disabled = !(w && w.verb === "gather");
    if (data.ended) $("status").textContent = `Call ended (${data.ended}).`;
    else if (w && w.verb === "dial") {
      $("status").textContent = `Ringing ${w.targets.join(", ")}: how does the transfer end?`;
      const preset = $("outcome").value;
      if (preset !== "ask") setTimeout(() => send({ kind: "dial", text: preset }), 300);
    } else if (w) {
      const multi = !w.num_digits && w.finish_on_key;
      $("status").textContent = multi ? `Type the digits, then ${w.finish_on_key}.` : "Press a key or say something.";
    }
  }

  async function api(path, body) {
    const response = await fetch(`/simulator/api${path}`, {
      method: body ? "POST" : "GET", headers: { "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  async function send(input) {
    if (!state.id || state.busy) return;
    state.busy = true;
    try {
      const data = await api(`/calls/${state.id}/input`, input);
      if (input.kind === "dial") line("dial", `☎ Transfer result: ${input.text}`);
      show(data);
    }
    catch (error) { $("status").textContent = error.message; }
    finally { state.busy = false; }
  }

  async function dial() {
    transcript.replaceChildren();
    $("status").textContent = "Calling…";
    try {
      const data = await api("/calls", { from: $("from").value, at: $("at").value });
      state.id = data.id;
      show(data);
    } catch (error) { $("status").textContent = error.message; }
  }

  function key(k) {
    const w = state.waiting;
    if (!w || w.verb !== "gather" || state.busy) return;
    const multi = !w.num_digits && w.finish_on_key;
    if (multi && k !== w.finish_on_key) { state.buffer += k; $("entry").textContent = state.buffer; return; }
    send({ kind: "keys", text: multi ? state.buffer + k : k });
  }

  $("dial").addEventListener("click", dial);
  $("hangup").addEventListener("click", () => send({ kind: "hangup" }));
  $("silence").addEventListener("click", () => send({ kind: "silence" }));
  $("speech").addEventListener("submit", (e) => { e.preventDefault(); const t = $("words").value.trim(); if (t) { send({ kind: "say", text: t }); $("words").value = ""; } });
  for (const b of document.querySelectorAll("#keypad button")) b.addEventListener("click", () => key(b.dataset.key));
  for (const b of document.querySelectorAll("#outcomes button")) b.addEventListener("click", () => send({ kind: "dial", text: b.dataset.outcome }));
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9*#]$/.test(e.key)) { e.preventDefault(); key(e.key); }
  });
  for (const b of document.querySelectorAll("#keypad button, #silence, #speech button")) b.disabled = true;
})();
