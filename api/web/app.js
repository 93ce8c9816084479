// The vinbot chat page: plain JavaScript, no build step, no third-party code.
// It talks to POST /ask like any other client (Server-Sent Events), keeps the
// conversation in localStorage and renders every piece of model text with
// textContent, never as HTML.
"use strict";

(() => {
  const STORAGE_KEY = "vinbot.chat.v1";
  const LANGUAGE_KEY = "vinbot.language";
  const MAX_STORED_MESSAGES = 200;
  const LANGUAGES = ["en", "es", "fr", "de"];

  const STRINGS = {
    en: {
      tagline: "Ask about any vehicle: paste a VIN, or try “What car is 1HGCM82633A004352?”",
      language: "Language",
      newConversation: "New conversation",
      transcript: "Conversation",
      messageLabel: "Your message",
      placeholder: "Ask about a VIN…",
      send: "Send",
      you: "You",
      assistant: "vinbot",
      thinking: "Thinking…",
      details: "Sources and tools",
      sources: "Sources",
      toolCalls: "Tool calls",
      dataset: "Dataset",
      record: "Record",
      dataDate: "Data date",
      failed: "failed",
      running: "running…",
      answerReady: "Answer received.",
      errorGeneric: "Something went wrong. Please try again.",
      errorRateLimited: "Too many requests. Please try again in {s} s.",
      errorNetwork: "The server could not be reached. Check your connection and try again.",
    },
    es: {
      tagline: "Pregunta sobre cualquier vehículo: pega un VIN o prueba «¿Qué coche es 1HGCM82633A004352?»",
      language: "Idioma",
      newConversation: "Nueva conversación",
      transcript: "Conversación",
      messageLabel: "Tu mensaje",
      placeholder: "Pregunta por un VIN…",
      send: "Enviar",
      you: "Tú",
      assistant: "vinbot",
      thinking: "Pensando…",
      details: "Fuentes y herramientas",
      sources: "Fuentes",
      toolCalls: "Llamadas a herramientas",
      dataset: "Conjunto de datos",
      record: "Registro",
      dataDate: "Fecha de los datos",
      failed: "falló",
      running: "en curso…",
      answerReady: "Respuesta recibida.",
      errorGeneric: "Algo salió mal. Inténtalo de nuevo.",
      errorRateLimited: "Demasiadas solicitudes. Inténtalo de nuevo en {s} s.",
      errorNetwork: "No se pudo conectar con el servidor. Revisa tu conexión e inténtalo de nuevo.",
    },
    fr: {
      tagline: "Posez vos questions sur un véhicule : collez un VIN ou essayez « Quelle voiture est 1HGCM82633A004352 ? »",
      language: "Langue",
      newConversation: "Nouvelle conversation",
      transcript: "Conversation",
      messageLabel: "Votre message",
      placeholder: "Votre question…",
      send: "Envoyer",
      you: "Vous",
      assistant: "vinbot",
      thinking: "Réflexion…",
      details: "Sources et outils",
      sources: "Sources",
      toolCalls: "Appels d’outils",
      dataset: "Jeu de données",
      record: "Fiche",
      dataDate: "Date des données",
      failed: "échec",
      running: "en cours…",
      answerReady: "Réponse reçue.",
      errorGeneric: "Une erreur s’est produite. Veuillez réessayer.",
      errorRateLimited: "Trop de requêtes. Réessayez dans {s} s.",
      errorNetwork: "Le serveur est injoignable. Vérifiez votre connexion et réessayez.",
    },
    de: {
      tagline: "Fragen Sie zu jedem Fahrzeug: VIN einfügen oder „Welches Auto ist 1HGCM82633A004352?“ probieren.",
      language: "Sprache",
      newConversation: "Neues Gespräch",
      transcript: "Gespräch",
      messageLabel: "Ihre Nachricht",
      placeholder: "Frage zu einer VIN…",
      send: "Senden",
      you: "Sie",
      assistant: "vinbot",
      thinking: "Denke nach…",
      details: "Quellen und Werkzeuge",
      sources: "Quellen",
      toolCalls: "Werkzeugaufrufe",
      dataset: "Datensatz",
      record: "Eintrag",
      dataDate: "Datenstand",
      failed: "fehlgeschlagen",
      running: "läuft…",
      answerReady: "Antwort erhalten.",
      errorGeneric: "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
      errorRateLimited: "Zu viele Anfragen. Bitte in {s} s erneut versuchen.",
      errorNetwork: "Der Server ist nicht erreichbar. Prüfen Sie die Verbindung und versuchen Sie es erneut.",
    },
  };

  const $ = (id) => document.getElementById(id);
  const transcriptEl = $("transcript");
  const emptyEl = $("empty");
  const form = $("composer");
  const input = $("message");
  const sendButton = $("send");
  const languageSelect = $("language");
  const newButton = $("new-conversation");
  const statusEl = $("status");

  let language = chooseLanguage();
  let state = loadState();
  let inFlight = null; // the AbortController of the answer being streamed

  // ------------------------------------------------------------ language

  function chooseLanguage() {
    const saved = safeGet(LANGUAGE_KEY);
    if (LANGUAGES.includes(saved)) return saved;
    for (const tag of navigator.languages || [navigator.language || "en"]) {
      const base = String(tag).toLowerCase().split("-")[0];
      if (LANGUAGES.includes(base)) return base;
    }
    return "en";
  }

  function t(key, values) {
    const text = (STRINGS[language] && STRINGS[language][key]) || STRINGS.en[key] || key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (values && name in values ? String(values[name]) : ""));
  }

  function applyLanguage() {
    document.documentElement.lang = language;
    languageSelect.value = language;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
      el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
    }
    renderTranscript();
  }

  // ------------------------------------------------------------ storage

  function safeGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return null; // storage disabled (private mode): the page still works, without memory
    }
  }

  function safeSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch {
      // full or disabled storage: keep going without persistence
    }
  }

  function loadState() {
    try {
      const parsed = JSON.parse(safeGet(STORAGE_KEY) || "null");
      if (parsed && Array.isArray(parsed.messages)) {
        return {
          conversationId: typeof parsed.conversationId === "string" ? parsed.conversationId : null,
          messages: parsed.messages.filter((m) => m && (m.role === "user" || m.role === "assistant")),
        };
      }
    } catch {
      // a corrupt entry starts a fresh conversation
    }
    return { conversationId: null, messages: [] };
  }

  function saveState() {
    state.messages = state.messages.slice(-MAX_STORED_MESSAGES);
    safeSet(STORAGE_KEY, JSON.stringify(state));
  }

  // ------------------------------------------------------------ rendering

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function renderTranscript() {
    transcriptEl.replaceChildren(...state.messages.map(renderMessage));
    emptyEl.hidden = state.messages.length > 0;
  }

  function renderMessage(message) {
    const item = el("li", `msg ${message.role}`);
    item.dataset.state = message.error ? "error" : "done";
    item.append(el("span", "who", message.role === "user" ? t("you") : t("assistant")));
    const body = el("div", "text", message.text || "");
    item.append(body);
    if (message.error) item.append(el("p", "error", message.error));
    for (const attachment of message.attachments || []) {
      // Charts arrive as base64 PNG in Answer.attachments (a comparison's bar chart).
      if (attachment.media_type !== "image/png" || typeof attachment.data_base64 !== "string") continue;
      const image = el("img", "attachment");
      image.src = `data:image/png;base64,${attachment.data_base64}`;
      image.alt = attachment.title || attachment.name || "";
      item.append(image);
    }
    if (message.role === "assistant") {
      const meta = renderMeta(message.sources || [], message.tool_calls || []);
      if (meta) item.append(meta);
    }
    return item;
  }

  function renderMeta(sources, toolCalls) {
    if (!sources.length && !toolCalls.length) return null;
    const details = el("details", "meta");
    details.append(el("summary", null, `${t("details")} (${sources.length} · ${toolCalls.length})`));
    if (sources.length) {
      details.append(el("h3", null, t("sources")));
      const list = el("ul", "sources");
      for (const source of sources) list.append(renderSource(source));
      details.append(list);
    }
    if (toolCalls.length) {
      details.append(el("h3", null, t("toolCalls")));
      const list = el("ul", "tools");
      for (const call of toolCalls) list.append(renderToolCall(call));
      details.append(list);
    }
    return details;
  }

  function renderSource(source) {
    const item = el("li", "source");
    item.append(el("strong", null, source.title || source.dataset || source.provider || ""));
    const facts = el("dl");
    const add = (label, value) => {
      if (value === undefined || value === null || value === "") return;
      facts.append(el("dt", null, label), el("dd", null, value));
    };
    add(t("dataset"), source.dataset);
    add(t("record"), source.record_id);
    add(t("dataDate"), source.data_date);
    item.append(facts);
    return item;
  }

  function renderToolCall(call) {
    const item = el("li", "tool");
    item.append(el("code", "tool-name", call.name));
    const args = call.args && Object.keys(call.args).length ? JSON.stringify(call.args) : "";
    if (args) item.append(" ", el("code", "tool-args", args));
    const took = typeof call.duration_ms === "number" ? `${Math.round(call.duration_ms)} ms` : t("running");
    item.append(" ", el("span", "tool-duration", took));
    if (call.ok === false) item.append(" ", el("span", "tool-failed", t("failed")));
    return item;
  }

  function scrollToEnd() {
    window.scrollTo({ top: document.body.scrollHeight });
  }

  // ------------------------------------------------------------ asking

  async function ask(text) {
    const question = { role: "user", text };
    state.messages.push(question);
    saveState();
    transcriptEl.append(renderMessage(question));
    emptyEl.hidden = true;

    const item = el("li", "msg assistant");
    item.dataset.state = "streaming";
    item.setAttribute("aria-busy", "true");
    item.append(el("span", "who", t("assistant")));
    const body = el("div", "text");
    const thinking = el("span", "thinking", t("thinking"));
    body.append(thinking);
    item.append(body);
    transcriptEl.append(item);
    scrollToEnd();

    const live = []; // tool calls as they happen, before the final answer lists them
    let streamed = "";
    const controller = new AbortController();
    inFlight = controller;
    setBusy(true);

    const showLiveTools = () => {
      item.querySelector("details.meta")?.remove();
      const meta = renderMeta([], live);
      if (meta) item.append(meta);
    };

    const finish = (message) => {
      state.messages.push(message);
      saveState();
      item.replaceWith(renderMessage(message));
      statusEl.textContent = message.error ? message.error : t("answerReady");
      scrollToEnd();
    };

    try {
      const response = await fetch("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({
          message: text,
          conversation_id: state.conversationId || undefined,
          language,
        }),
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        finish({ role: "assistant", text: "", error: await errorText(response) });
        return;
      }
      let done = false;
      for await (const { event, data } of readEvents(response.body)) {
        if (event === "token") {
          if (!streamed) body.replaceChildren();
          streamed += data.text || "";
          body.textContent = streamed;
          scrollToEnd();
        } else if (event === "tool_call") {
          live.push({ name: data.name, args: data.args || {} });
          showLiveTools();
        } else if (event === "tool_result") {
          const pending = live.find((call) => call.name === data.name && call.duration_ms === undefined);
          if (pending) Object.assign(pending, { duration_ms: data.duration_ms, ok: data.ok });
          showLiveTools();
        } else if (event === "answer") {
          if (typeof data.conversation_id === "string") state.conversationId = data.conversation_id;
          finish({
            role: "assistant",
            text: data.answer || "",
            language: data.language,
            sources: data.sources || [],
            tool_calls: data.tool_calls || [],
            attachments: data.attachments || [],
            planner: data.planner,
          });
          done = true;
        } else if (event === "error") {
          finish({ role: "assistant", text: streamed, error: messageOf(data) });
          done = true;
        }
      }
      if (!done) finish({ role: "assistant", text: streamed, error: t("errorNetwork") });
    } catch (error) {
      if (controller.signal.aborted) {
        item.remove(); // the user started a new conversation
      } else {
        finish({ role: "assistant", text: streamed, error: t("errorNetwork") });
      }
    } finally {
      if (inFlight === controller) inFlight = null;
      setBusy(false);
    }
  }

  async function* readEvents(stream) {
    // Server-Sent Events over fetch: frames end with a blank line; ":" lines are heartbeats.
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const parsed = parseFrame(frame);
        if (parsed) yield parsed;
      }
    }
  }

  function parseFrame(frame) {
    let event = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { event, data: JSON.parse(data.join("\n")) };
    } catch {
      return null;
    }
  }

  async function errorText(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: fall back to a generic message
    }
    if (response.status === 429) {
      const seconds = Number(response.headers.get("Retry-After")) || Math.ceil((body && body.retry_after) || 1);
      return t("errorRateLimited", { s: seconds });
    }
    return messageOf(body);
  }

  function messageOf(body) {
    if (body && body.error === "rate_limited") {
      return t("errorRateLimited", { s: Math.max(1, Math.ceil(body.retry_after || 1)) });
    }
    if (body && typeof body.message === "string" && body.error !== "internal_error") return body.message;
    return t("errorGeneric");
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // ------------------------------------------------------------ events

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || inFlight) return;
    input.value = "";
    autosize();
    ask(text);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }
  input.addEventListener("input", autosize);

  languageSelect.addEventListener("change", () => {
    if (!LANGUAGES.includes(languageSelect.value)) return;
    language = languageSelect.value;
    safeSet(LANGUAGE_KEY, language);
    applyLanguage();
  });

  newButton.addEventListener("click", () => {
    if (inFlight) inFlight.abort();
    state = { conversationId: null, messages: [] };
    saveState();
    renderTranscript();
    statusEl.textContent = "";
    input.focus();
  });

  applyLanguage();
  scrollToEnd();
})();
