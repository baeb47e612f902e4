/*
 * Shopdesk chat widget: one tag adds a chat bubble to any page, no framework, no build step.
 *
 *   <script src="https://help.example/widget/widget.js" defer
 *           data-title="Fern & Field help"            (optional: the panel's heading)
 *           data-customer-token="v1...."              (optional: signed by the shop for a signed-in customer)
 *           data-api="https://help.example"></script> (optional: the API's base; default: where this file is)
 *
 * Safety: nothing from a reply or from the shopper is ever parsed as HTML. Every node is built with
 * createElement and textContent; the small markdown subset (bold, line breaks, http(s) links) is
 * turned into nodes by hand, and a link is made only for an http: or https: URL.
 * Lives in a shadow root so the host page's CSS cannot break it, nor it the page's.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__shopdeskWidget) { return; }
  window.__shopdeskWidget = true;

  var scriptUrl = new URL(script.src, location.href);
  var apiBase = (script.getAttribute("data-api") || new URL("..", scriptUrl).href).replace(/\/+$/, "");
  var title = script.getAttribute("data-title") || "Chat with us";
  var customerToken = script.getAttribute("data-customer-token") || "";
  var storeKey = "shopdesk:" + apiBase;
  var HUMAN_REQUEST = "I'd like to talk to a person, please.";
  var TURN_FAILED = "Sorry, the connection dropped. Please try again.";

  // ---- state kept across page loads -----------------------------------------------------------
  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode: no memory */ }
  }
  var state = load();
  if (state.signedIn && !customerToken) {
    state = {};  // the shopper signed out: a verified chat must not outlive the sign-in
  }
  state.signedIn = !!customerToken;
  save();

  // ---- DOM helpers ------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  var SVGNS = "http://www.w3.org/2000/svg";
  var ICONS = {
    chat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2z",
    up: "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
        "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"
  };

  function icon(name, size, flip) {
    var svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size));
    svg.setAttribute("height", String(size));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVGNS, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    if (flip) { path.setAttribute("transform", "rotate(180 12 12)"); }
    svg.appendChild(path);
    return svg;
  }

  function safeUrl(raw) {
    try {
      var u = new URL(raw);
      return (u.protocol === "http:" || u.protocol === "https:") ? u.href : null;
    } catch (e) { return null; }
  }

  function appendLink(parent, label, url) {
    var href = safeUrl(url);
    if (!href) { parent.appendChild(document.createTextNode(label === url ? label : label + " (" + url + ")")); return; }
    var a = el("a", { href: href, target: "_blank", rel: "noopener noreferrer nofollow" }, label);
    parent.appendChild(a);
  }

  // **bold**, [label](url) and bare http(s) URLs; everything else stays text
  var INLINE = /\*\*([^*\n]+)\*\*|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()"']*[^\s<>()"'.,;:!?])/g;

  function renderInline(parent, text) {
    var last = 0, m;
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text)) !== null) {
      if (m.index > last) { parent.appendChild(document.createTextNode(text.slice(last, m.index))); }
      if (m[1] !== undefined) { parent.appendChild(el("strong", {}, m[1])); }
      else if (m[2] !== undefined) { appendLink(parent, m[2], m[3]); }
      else { appendLink(parent, m[4], m[4]); }
      last = INLINE.lastIndex;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function renderMarkdown(parent, text) {
    while (parent.firstChild) { parent.removeChild(parent.firstChild); }
    String(text).split(/\n{2,}/).forEach(function (para) {
      if (!para.trim()) { return; }
      var p = el("p");
      para.split("\n").forEach(function (line, i) {
        if (i) { p.appendChild(el("br")); }
        renderInline(p, line);
      });
      parent.appendChild(p);
    });
  }

  // ---- the widget's DOM ---------------------------------------------------------------------------
  var host = el("div", { id: "shopdesk-widget" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("link", { rel: "stylesheet", href: new URL("widget.css", scriptUrl).href }));
  var wrap = el("div", { "class": "sd-root" });
  var bubble = el("button", { type: "button", "class": "sd-bubble", "aria-label": "Open chat: " + title,
                              "aria-expanded": "false", "aria-controls": "sd-panel" });
  bubble.appendChild(icon("chat", 22));
  bubble.appendChild(el("span", { "class": "sd-bubble-text" }, "Help"));
  var panel = el("section", { id: "sd-panel", "class": "sd-panel", role: "dialog", "aria-modal": "false",
                              "aria-labelledby": "sd-title" });
  panel.hidden = true;
  var header = el("header", { "class": "sd-header" });
  header.appendChild(el("h2", { id: "sd-title", "class": "sd-title" }, title));
  var humanBtn = el("button", { type: "button", "class": "sd-human" }, "Talk to a human");
  var newBtn = el("button", { type: "button", "class": "sd-icon-btn sd-new", "aria-label": "Start a new conversation",
                              title: "New conversation" }, "\u21BB");
  var closeBtn = el("button", { type: "button", "class": "sd-icon-btn sd-close", "aria-label": "Close chat",
                                title: "Close" }, "\u00D7");
  header.appendChild(newBtn);
  header.appendChild(closeBtn);
  var subbar = el("div", { "class": "sd-subbar" });
  subbar.appendChild(el("span", { "class": "sd-subtitle" }, "Instant answers, or a person"));
  subbar.appendChild(humanBtn);
  var log = el("div", { "class": "sd-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
                        "aria-label": "Conversation", tabindex: "0" });
  var chips = el("div", { "class": "sd-chips", role: "group", "aria-label": "Suggested replies" });
  var form = el("form", { "class": "sd-form" });
  var label = el("label", { "for": "sd-input", "class": "sd-vh" }, "Your message");
  var input = el("textarea", { id: "sd-input", "class": "sd-input", rows: "1", maxlength: "2000",
                               placeholder: "Ask about an order, shipping, returns\u2026", autocomplete: "off" });
  var sendBtn = el("button", { type: "submit", "class": "sd-send" }, "Send");
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(subbar);
  panel.appendChild(log);
  panel.appendChild(chips);
  panel.appendChild(form);
  wrap.appendChild(panel);
  wrap.appendChild(bubble);
  root.appendChild(wrap);

  // ---- messages ---------------------------------------------------------------------------------
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addUser(text) {
    var m = el("div", { "class": "sd-msg sd-user" });
    m.appendChild(el("span", { "class": "sd-vh" }, "You said: "));
    m.appendChild(el("div", { "class": "sd-text" }, text));
    log.appendChild(m);
    scrollDown();
  }

  function addAssistant() {
    var m = el("div", { "class": "sd-msg sd-bot" });
    m.appendChild(el("span", { "class": "sd-vh" }, "Assistant: "));
    var body = el("div", { "class": "sd-text" });
    var typing = el("span", { "class": "sd-typing", "aria-hidden": "true" });  // until the first token
    typing.appendChild(el("i"));
    typing.appendChild(el("i"));
    typing.appendChild(el("i"));
    body.appendChild(typing);
    m.appendChild(body);
    log.appendChild(m);
    scrollDown();
    return { node: m, body: body, text: "" };
  }

  function addNotice(text) {
    var m = el("div", { "class": "sd-msg sd-notice", role: "alert" }, text);
    log.appendChild(m);
    scrollDown();
  }

  function orderCard(card) {
    var box = el("section", { "class": "sd-card", "aria-label": "Order " + card.order_id });
    var head = el("div", { "class": "sd-card-head" });
    head.appendChild(el("strong", {}, "Order " + card.order_id));
    head.appendChild(el("span", { "class": "sd-badge sd-st-" + String(card.status).replace(/[^a-z_]/g, "") },
                        card.status_text || card.status));
    box.appendChild(head);
    if (card.items && card.items.length) {
      var list = el("ul", { "class": "sd-card-items", "aria-label": "Items" });
      card.items.forEach(function (item) {
        list.appendChild(el("li", {}, (item.qty > 1 ? item.qty + " \u00d7 " : "") + item.name));
      });
      box.appendChild(list);
    } else if (card.items_text) {
      box.appendChild(el("p", { "class": "sd-card-line" }, "Items: " + card.items_text));
    }
    if (card.tracking_number) {
      box.appendChild(el("p", { "class": "sd-card-line" },
                         "Tracking: " + (card.carrier ? card.carrier + " " : "") + card.tracking_number));
    }
    var steps = el("ol", { "class": "sd-timeline", "aria-label": "Tracking timeline" });
    (card.timeline || []).forEach(function (step) {
      var li = el("li", { "class": step.done ? "sd-done" : "sd-todo" });
      li.appendChild(el("span", { "class": "sd-step" }, step.label));
      if (step.date) { li.appendChild(el("span", { "class": "sd-date" }, step.date)); }
      if (step.detail) { li.appendChild(el("span", { "class": "sd-detail" }, step.detail)); }
      steps.appendChild(li);
    });
    box.appendChild(steps);
    if (card.next_step) { box.appendChild(el("p", { "class": "sd-card-next" }, card.next_step)); }
    return box;
  }

  function rateButtons(turnId, current) {
    var row = el("div", { "class": "sd-rate", role: "group", "aria-label": "Was this reply helpful?" });
    [["up", false, "Helpful"], ["down", true, "Not helpful"]].forEach(function (spec) {
      var b = el("button", { type: "button", "class": "sd-rate-btn", "aria-label": spec[2], title: spec[2],
                             "aria-pressed": String(current === spec[0]), "data-rating": spec[0] });
      b.appendChild(icon("up", 14, spec[1]));
      b.addEventListener("click", function () { sendFeedback(turnId, spec[0], row); });
      row.appendChild(b);
    });
    return row;
  }

  function finishAssistant(msg, reply, rating) {
    renderMarkdown(msg.body, reply.text);
    if (reply.card && reply.card.type === "order") { msg.node.appendChild(orderCard(reply.card)); }
    if (reply.turn_id) { msg.node.appendChild(rateButtons(reply.turn_id, rating)); }
    scrollDown();
  }

  function showChips(choices) {
    while (chips.firstChild) { chips.removeChild(chips.firstChild); }
    (choices || []).forEach(function (choice) {
      var b = el("button", { type: "button", "class": "sd-chip" }, choice);
      b.addEventListener("click", function () { send(choice); });
      chips.appendChild(b);
    });
  }

  // ---- the API ----------------------------------------------------------------------------------
  var busy = false;

  function apiError(status, body) {
    var e = new Error((body && body.error) || ("The chat service answered " + status + "."));
    e.status = status;
    return e;
  }

  function parseFrames(buffer, onEvent) {
    var idx;
    while ((idx = buffer.indexOf("\n\n")) >= 0) {
      var frame = buffer.slice(0, idx);
      buffer = buffer.slice(idx + 2);
      var name = "message", data = "";
      frame.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { name = line.slice(6).trim(); }
        else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
      });
      if (data) { onEvent(name, JSON.parse(data)); }
    }
    return buffer;
  }

  function streamTurn(text, msg) {
    var body = { message: text, channel: "widget" };
    if (state.sessionId) { body.session_id = state.sessionId; }
    if (customerToken) { body.customer_token = customerToken; }
    var headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (state.sessionToken) { headers["X-Session-Token"] = state.sessionToken; }
    var finalReply = null;
    return fetch(apiBase + "/api/v1/chat/stream", { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (res) {
        if (!res.ok) {
          return res.json().catch(function () { return {}; }).then(function (b) { throw apiError(res.status, b); });
        }
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function onEvent(name, data) {
          if (name === "session") {
            state.sessionId = data.session_id;
            if (data.session_token) { state.sessionToken = data.session_token; }
            save();
          } else if (name === "token") {
            msg.text += data.text;
            renderMarkdown(msg.body, msg.text);
            scrollDown();
          } else if (name === "reply") {
            finalReply = data;
          } else if (name === "error") {
            throw apiError(503, data);
          }
        }
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { return finalReply; }
            buffer = parseFrames(buffer + decoder.decode(chunk.value, { stream: true }), onEvent);
            return pump();
          });
        }
        return pump();
      });
  }

  function send(text) {
    text = String(text || "").trim();
    if (!text || busy) { return; }
    busy = true;
    sendBtn.disabled = true;
    showChips([]);
    addUser(text);
    input.value = "";
    var msg = addAssistant();
    log.setAttribute("aria-busy", "true");  // announce the reply once, when complete
    var attempt = function (retried) {
      return streamTurn(text, msg).catch(function (err) {
        if (err.status === 403 && !retried) {  // a stale session (e.g. the server was reset): start afresh
          state = { signedIn: !!customerToken };
          save();
          return attempt(true);
        }
        throw err;
      });
    };
    attempt(false).then(function (reply) {
      if (!reply) { throw new Error(TURN_FAILED); }
      finishAssistant(msg, reply, null);
      showChips(reply.choices);
    }).catch(function (err) {
      log.removeChild(msg.node);
      addNotice(err && err.message ? err.message : TURN_FAILED);
    }).then(function () {
      busy = false;
      sendBtn.disabled = false;
      log.setAttribute("aria-busy", "false");
      input.focus();
    });
  }

  function sendFeedback(turnId, rating, row) {
    var headers = { "Content-Type": "application/json", "X-Session-Token": state.sessionToken || "" };
    fetch(apiBase + "/api/v1/feedback", {
      method: "POST", headers: headers,
      body: JSON.stringify({ session_id: state.sessionId, turn_id: turnId, rating: rating, channel: "widget" })
    }).then(function (res) {
      if (!res.ok) { return; }
      Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-pressed", String(b.getAttribute("data-rating") === rating));
      });
    }).catch(function () { /* feedback is best effort */ });
  }

  function restore() {
    if (!state.sessionId || !state.sessionToken) { return; }
    fetch(apiBase + "/api/v1/sessions/" + encodeURIComponent(state.sessionId),
          { headers: { "X-Session-Token": state.sessionToken } })
      .then(function (res) {
        if (res.status === 404 || res.status === 401) { state = { signedIn: !!customerToken }; save(); return null; }
        return res.ok ? res.json() : null;
      })
      .then(function (data) {
        if (!data || !data.turns) { return; }
        log.setAttribute("aria-busy", "true");  // history is not news: do not read it all out
        data.turns.forEach(function (t) {
          addUser(t.user);
          finishAssistant(addAssistant(), { text: t.reply, card: t.card, turn_id: t.turn_id },
                          t.rating === 1 ? "up" : (t.rating === -1 ? "down" : null));
        });
        var lastTurn = data.turns[data.turns.length - 1];
        if (lastTurn) { showChips(lastTurn.choices); }
        log.setAttribute("aria-busy", "false");
      })
      .catch(function () { /* offline: start empty */ });
  }

  // ---- open, close, keyboard -------------------------------------------------------------------
  function setOpen(open) {
    panel.hidden = !open;
    wrap.classList.toggle("sd-open", open);
    bubble.setAttribute("aria-expanded", String(open));
    bubble.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + title);
    state.open = open;
    save();
    if (open) { input.focus(); scrollDown(); } else { bubble.focus(); }
  }

  bubble.addEventListener("click", function () { setOpen(panel.hidden); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  humanBtn.addEventListener("click", function () { send(HUMAN_REQUEST); });
  newBtn.addEventListener("click", function () {
    state = { signedIn: !!customerToken, open: true };
    save();
    while (log.firstChild) { log.removeChild(log.firstChild); }
    showChips([]);
    input.focus();
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); send(input.value); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(input.value); }
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); setOpen(false); }
  });

  function mount() {
    document.body.appendChild(host);
    restore();
    if (state.open) {
      panel.hidden = false;
      wrap.classList.add("sd-open");
      bubble.setAttribute("aria-expanded", "true");
    }
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
