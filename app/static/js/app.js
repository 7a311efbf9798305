/* PrefHub's one script: keyboard-first judging, drafts and timer, differences, ranking, overlays, notices.
 *
 * The Content-Security-Policy allows no inline script or style and no eval, so everything the page needs is
 * here, wired by data- attributes. Text shown to people comes from data- attributes rendered by the
 * templates, so it is translated with the rest of the page. */
(function () {
  "use strict";

  var STORE_PREFIX = "prefhub.";
  // Drafts and start times of items never finished (a lease that expired) are dropped after a week.
  var STALE_AFTER_MS = 7 * 24 * 3600 * 1000;
  // Word-level LCS is quadratic; past this many cells the comparison would freeze the tab.
  var MAX_DIFF_CELLS = 12000000;
  var STRENGTH_KEYS = { q: 1, w: 2, e: 3, r: 4 };

  function one(selector, root) { return (root || document).querySelector(selector); }
  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  /* ---------- storage: never let a full or disabled localStorage break judging ---------- */

  var store = {
    get: function (key) {
      try { return JSON.parse(window.localStorage.getItem(STORE_PREFIX + key)); } catch (e) { return null; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(STORE_PREFIX + key, JSON.stringify(value)); } catch (e) { /* quota */ }
    },
    remove: function (key) {
      try { window.localStorage.removeItem(STORE_PREFIX + key); } catch (e) { /* disabled */ }
    }
  };

  function forgetStaleEntries() {
    var now = Date.now();
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (!key || key.indexOf(STORE_PREFIX) !== 0) continue;
        var value = store.get(key.slice(STORE_PREFIX.length));
        var at = typeof value === "number" ? value : value && value.at;
        if (typeof at !== "number" || now - at > STALE_AFTER_MS) window.localStorage.removeItem(key);
      }
    } catch (e) { /* storage unavailable */ }
  }

  /* ---------- notices ---------- */

  function toast(message) {
    if (!message) return;
    var box = one("#toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    box.textContent = message;
    box.classList.add("visible");
    window.clearTimeout(toast.timer);
    toast.timer = window.setTimeout(function () { box.classList.remove("visible"); }, 6000);
  }

  function fill(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (match, name) {
      return name in values ? String(values[name]) : match;
    });
  }

  /* ---------- the current item ---------- */

  function workspace() { return one("#workspace"); }
  function answerForm() { return one("#answer-form"); }
  function assignmentId() { var ws = workspace(); return ws ? ws.getAttribute("data-assignment-id") : null; }

  function isTyping(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    return ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"].indexOf(element.type) < 0;
  }

  /* ---------- timer: counts from the first time this assignment was shown, across reloads ---------- */

  function startedAt(id) {
    var start = store.get("start." + id);
    if (typeof start !== "number") {
      start = Date.now();
      store.set("start." + id, start);
    }
    return start;
  }

  function formatDuration(ms) {
    var seconds = Math.max(0, Math.floor(ms / 1000));
    var minutes = Math.floor(seconds / 60);
    var hours = Math.floor(minutes / 60);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (hours ? hours + ":" + pad(minutes % 60) : pad(minutes)) + ":" + pad(seconds % 60);
  }

  function tickTimer() {
    var text = one("[data-timer-text]");
    if (!text) return;
    var id = assignmentId();
    var ws = workspace();
    var judging = ws && ws.getAttribute("data-view") === "item";
    text.textContent = id && judging ? formatDuration(Date.now() - startedAt(id)) : "--:--";
  }

  /* ---------- drafts: what the rater chose or typed, per assignment, until it is submitted ---------- */

  function isDraftField(name) { return name && (name.indexOf("q.") === 0 || name === "rationale" || name === "flags"); }

  function saveDraft(form) {
    var id = form.getAttribute("data-assignment-id");
    if (!id) return;
    var fields = [];
    all("input, textarea, select", form).forEach(function (element) {
      if (!isDraftField(element.name)) return;
      if (element.type === "radio" || element.type === "checkbox") {
        if (element.checked) fields.push([element.name, element.value]);
      } else if (element.value) {
        fields.push([element.name, element.value]);
      }
    });
    store.set("draft." + id, { at: Date.now(), fields: fields });
  }

  function restoreDraft(form) {
    var draft = store.get("draft." + form.getAttribute("data-assignment-id"));
    if (!draft || !Array.isArray(draft.fields)) return;
    var byName = {};
    all("input, textarea, select", form).forEach(function (element) {
      if (isDraftField(element.name)) (byName[element.name] = byName[element.name] || []).push(element);
    });
    draft.fields.forEach(function (entry) {
      if (!Array.isArray(entry) || entry.length !== 2) return;
      (byName[entry[0]] || []).forEach(function (element) {
        if (element.type === "radio" || element.type === "checkbox") {
          if (element.value === entry[1]) element.checked = true;
        } else {
          element.value = String(entry[1]);
        }
      });
    });
  }

  function forgetAssignment(id) {
    if (!id) return;
    store.remove("draft." + id);
    store.remove("start." + id);
  }

  /* ---------- preference questions ---------- */

  function syncStrength(fieldset) {
    var strength = one("[data-strength]", fieldset);
    if (!strength) return;
    var chosen = one("input[type=radio]:checked", one(".choices", fieldset));
    var off = !!(chosen && chosen.hasAttribute("data-no-strength"));
    strength.disabled = off;
    if (off) all("input", strength).forEach(function (input) { input.checked = false; });
  }

  function primaryPreference() { return one("#answer-form [data-kind=preference][data-primary]"); }

  function check(input) {
    if (!input || input.disabled) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function chooseOption(value) {
    var fieldset = primaryPreference();
    if (!fieldset) return false;
    return check(one('.choices > label > input[value="' + value + '"]', fieldset));
  }

  function chooseResponse(index) {
    var fieldset = primaryPreference();
    if (!fieldset) return false;
    return check(one('input[data-choice-index="' + index + '"]', fieldset));
  }

  function chooseStrength(level) {
    var fieldset = primaryPreference();
    var strength = fieldset && one("[data-strength]", fieldset);
    if (!strength || strength.disabled) return false;
    return check(one('input[value="' + level + '"]', strength));
  }

  /* ---------- ranking: drag and drop, buttons, Alt+arrows, digits ---------- */

  function rankEntries(list) { return all(".rank-entry", list); }

  function writePlaces(list, moved) {
    rankEntries(list).forEach(function (entry, index) { one("select", entry).value = String(index + 1); });
    list.setAttribute("data-cursor", "0");
    var form = list.closest("form");
    if (form) saveDraft(form);
    var status = one("[data-ranking-status]", list.parentNode);
    if (moved && status) {
      status.textContent = fill(list.getAttribute("data-moved"), {
        label: moved.getAttribute("data-label"), place: rankEntries(list).indexOf(moved) + 1
      });
    }
  }

  function orderBySelects(list) {
    var entries = rankEntries(list);
    var place = function (entry) {
      var value = parseInt(one("select", entry).value, 10);
      return isNaN(value) ? Infinity : value;
    };
    entries
      .map(function (entry, index) { return { entry: entry, place: place(entry), index: index }; })
      .sort(function (a, b) { return a.place - b.place || a.index - b.index; })
      .forEach(function (item) { list.appendChild(item.entry); });
  }

  function moveEntry(entry, step) {
    var list = entry.parentNode;
    var sibling = step < 0 ? entry.previousElementSibling : entry.nextElementSibling;
    if (!sibling) return;
    if (step < 0) list.insertBefore(entry, sibling); else list.insertBefore(sibling, entry);
    writePlaces(list, entry);
    entry.focus();
  }

  // Typing response numbers in order builds the ranking best first: 3, 1 puts C first and A second.
  function rankByNumber(number) {
    var list = one("#answer-form [data-ranking]");
    if (!list) return false;
    var entry = one('.rank-entry[data-index="' + number + '"]', list);
    if (!entry) return false;
    var cursor = parseInt(list.getAttribute("data-cursor") || "0", 10);
    var entries = rankEntries(list);
    if (entries.indexOf(entry) < cursor) cursor = 0;
    list.insertBefore(entry, entries[cursor] || null);
    writePlaces(list, entry);
    cursor += 1;
    list.setAttribute("data-cursor", String(cursor >= entries.length - 1 ? 0 : cursor));
    return true;
  }

  function initRanking(list) {
    orderBySelects(list);
    var dragged = null;
    list.addEventListener("click", function (event) {
      var button = event.target.closest("[data-move]");
      if (button) moveEntry(button.closest(".rank-entry"), button.getAttribute("data-move") === "up" ? -1 : 1);
    });
    list.addEventListener("change", function (event) {
      if (event.target.tagName === "SELECT") orderBySelects(list);
    });
    list.addEventListener("dragstart", function (event) {
      dragged = event.target.closest(".rank-entry");
      if (!dragged) return;
      dragged.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.getAttribute("data-label"));
    });
    list.addEventListener("dragover", function (event) {
      var over = event.target.closest(".rank-entry");
      if (!dragged || !over || over === dragged) return;
      event.preventDefault();
      var box = over.getBoundingClientRect();
      list.insertBefore(dragged, event.clientY < box.top + box.height / 2 ? over : over.nextElementSibling);
    });
    list.addEventListener("drop", function (event) { if (dragged) event.preventDefault(); });
    list.addEventListener("dragend", function () {
      if (!dragged) return;
      dragged.classList.remove("dragging");
      writePlaces(list, dragged);
      dragged = null;
    });
  }

  /* ---------- show differences: word-level LCS over the rendered text of A and B ---------- */

  var TOKEN = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;
  var originals = new WeakMap();

  function tokensOf(body) {
    var tokens = [];
    var walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var match;
      TOKEN.lastIndex = 0;
      while ((match = TOKEN.exec(node.nodeValue)) !== null) {
        tokens.push({ node: node, start: match.index, end: match.index + match[0].length, text: match[0] });
      }
    }
    return tokens;
  }

  // Marks every token of a and b that is outside a longest common subsequence; false when too large.
  function markDifferences(a, b) {
    var start = 0;
    while (start < a.length && start < b.length && a[start].text === b[start].text) start++;
    var endA = a.length, endB = b.length;
    while (endA > start && endB > start && a[endA - 1].text === b[endB - 1].text) { endA--; endB--; }
    var n = endA - start, m = endB - start;
    if (n * m > MAX_DIFF_CELLS) return false;
    var width = m + 1;
    var table = new Uint32Array((n + 1) * width);
    for (var i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[start + i].text === b[start + j].text
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    var x = 0, y = 0;
    while (x < n && y < m) {
      if (a[start + x].text === b[start + y].text) { x++; y++; }
      else if (table[(x + 1) * width + y] >= table[x * width + y + 1]) { a[start + x].differs = true; x++; }
      else { b[start + y].differs = true; y++; }
    }
    for (; x < n; x++) a[start + x].differs = true;
    for (; y < m; y++) b[start + y].differs = true;
    return true;
  }

  function wrapDifferences(tokens) {
    // Group runs per text node, joining neighbouring changed words into one mark.
    var runs = new Map();
    tokens.forEach(function (token, index) {
      if (!token.differs) return;
      var list = runs.get(token.node) || [];
      var last = list[list.length - 1];
      var previous = tokens[index - 1];
      if (last && previous && previous.differs && previous.node === token.node) last.end = token.end;
      else list.push({ start: token.start, end: token.end });
      runs.set(token.node, list);
    });
    runs.forEach(function (list, node) {
      var text = node.nodeValue;
      var pieces = document.createDocumentFragment();
      var at = 0;
      list.forEach(function (run) {
        if (run.start > at) pieces.appendChild(document.createTextNode(text.slice(at, run.start)));
        var mark = document.createElement("mark");
        mark.className = "diff";
        mark.textContent = text.slice(run.start, run.end);
        pieces.appendChild(mark);
        at = run.end;
      });
      if (at < text.length) pieces.appendChild(document.createTextNode(text.slice(at)));
      node.parentNode.replaceChild(pieces, node);
    });
  }

  function toggleDifferences() {
    var ws = workspace();
    var button = ws && one("[data-action=diff]", ws);
    var bodies = ws ? all(".response-body", ws) : [];
    if (!button || bodies.length !== 2) return;
    var on = button.getAttribute("aria-pressed") !== "true";
    if (!on) {
      bodies.forEach(function (body) {
        if (originals.has(body)) body.replaceChildren.apply(body, originals.get(body));
      });
      button.setAttribute("aria-pressed", "false");
      return;
    }
    bodies.forEach(function (body) {
      originals.set(body, Array.prototype.map.call(body.childNodes, function (node) { return node.cloneNode(true); }));
    });
    var a = tokensOf(bodies[0]), b = tokensOf(bodies[1]);
    if (!markDifferences(a, b)) { toast(button.getAttribute("data-too-long")); return; }
    wrapDifferences(a);
    wrapDifferences(b);
    button.setAttribute("aria-pressed", "true");
  }

  /* ---------- overlays: guidelines drawer, help dialog, skip menu ---------- */

  function guidelinesPanel() { return one("#guidelines-panel"); }

  function setGuidelines(open) {
    var panel = guidelinesPanel();
    if (!panel) return;
    panel.hidden = !open;
    all('[data-action=guidelines]').forEach(function (button) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
    if (!open) {
      // Back to the item, so the judging keys work again at once.
      if (panel.contains(document.activeElement) && workspace()) workspace().focus({ preventScroll: true });
      return;
    }
    panel.focus();
    if (panel.getAttribute("data-unseen") === "true") {
      panel.setAttribute("data-unseen", "false");
      var news = one("#guidelines-news");
      if (news) news.hidden = true;
      window.fetch(panel.getAttribute("data-seen-url"), {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": document.body.getAttribute("data-csrf") || "" }
      }).catch(function () { /* seen again next time */ });
    }
  }

  function toggleGuidelines() {
    var panel = guidelinesPanel();
    if (panel) setGuidelines(panel.hidden);
  }

  function helpDialog() { return one("#help-dialog"); }

  function toggleHelp() {
    var dialog = helpDialog();
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  function openSkipMenu() { return one("#answer-form [data-skip-menu][open]"); }

  function setSkipMenu(open) {
    var menu = one("#answer-form [data-skip-menu]");
    if (!menu) return;
    menu.open = open;
    if (open) { var first = one("[data-skip-key]", menu); if (first) first.focus(); }
    else one("summary", menu).focus();
  }

  function closeOverlays() {
    var dialog = helpDialog();
    if (dialog && dialog.open) { dialog.close(); return true; }
    if (openSkipMenu()) { setSkipMenu(false); return true; }
    var panel = guidelinesPanel();
    if (panel && !panel.hidden) { setGuidelines(false); return true; }
    return false;
  }

  /* ---------- keyboard ---------- */

  function click(selector, root) {
    var element = one(selector, root || workspace() || document);
    if (!element) return false;
    element.click();
    return true;
  }

  function submitAnswers() {
    var form = answerForm();
    var button = form && one("[data-action=submit]", form);
    if (!button) return false;
    form.requestSubmit(button);
    return true;
  }

  function onItemKey(event) {
    var key = event.key;
    if (event.shiftKey && /^Digit[1-9]$/.test(event.code)) return chooseStrength(event.code.slice(5));
    if (/^[1-9]$/.test(key)) return chooseResponse(key) || rankByNumber(key);
    if (key in STRENGTH_KEYS) return chooseStrength(STRENGTH_KEYS[key]);
    switch (key) {
      case "t": return chooseOption("tie");
      case "b": return chooseOption("both_bad");
      case "Enter": return submitAnswers();
      case "s": setSkipMenu(true); return true;
      case "d": toggleDifferences(); return true;
    }
    return false;
  }

  function onSkipMenuKey(event) {
    var menu = openSkipMenu();
    if (/^[1-9]$/.test(event.key)) return click('[data-skip-key="' + event.key + '"]', menu);
    return event.key !== "Enter" && event.key !== "Tab";
  }

  function onKeyDown(event) {
    if (event.defaultPrevented || event.isComposing || event.keyCode === 229) return;
    var target = event.target;
    if (event.key === "Escape") {
      if (closeOverlays()) event.preventDefault();
      else if (isTyping(target)) target.blur();
      return;
    }
    var ws = workspace();
    // Shortcuts belong to the annotate page; elsewhere keys keep their ordinary meaning.
    if (!ws) return;
    if (helpDialog() && helpDialog().open) return;
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      var entry = target.closest && target.closest(".rank-entry");
      if (entry && !isTyping(target)) {
        event.preventDefault();
        moveEntry(entry, event.key === "ArrowUp" ? -1 : 1);
      }
      return;
    }
    if (isTyping(target)) {
      var single = target.tagName === "INPUT";
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey || (single && !event.shiftKey))) {
        if (target.form && target.form.id === "answer-form" && submitAnswers()) event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    // Enter on a focused button, link or summary keeps its own meaning.
    if (event.key === "Enter" && target.closest && target.closest("button, a, summary")) return;
    var handled = false;
    if (openSkipMenu()) handled = onSkipMenuKey(event);
    else if (event.key === "?") { toggleHelp(); handled = true; }
    else if (event.key === "g") { toggleGuidelines(); handled = true; }
    else if (ws.getAttribute("data-view") === "item") handled = onItemKey(event);
    else if (event.key === "Enter" || event.key === "n") handled = click("[data-action=next]");
    if (handled) event.preventDefault();
  }

  /* ---------- import: drop a file on the form, dry run at once, then import what it counted ---------- */

  function initDropZone(form) {
    if (form.hasAttribute("data-ready")) return;
    form.setAttribute("data-ready", "");
    var input = one("input[type=file]", form);
    var dryRun = form.elements.namedItem("dry_run");
    // Whatever was sent, the next file is counted before it is written.
    form.addEventListener("htmx:afterRequest", function () { if (dryRun) dryRun.checked = true; });
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (event) {
        event.preventDefault();
        form.classList.add("dropping");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      form.addEventListener(type, function (event) {
        if (type === "dragleave" && form.contains(event.relatedTarget)) return;
        form.classList.remove("dropping");
      });
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) return;
      input.files = files;
      // A dropped file is counted at once: the dry run writes nothing and shows what an import would do.
      if (dryRun) dryRun.checked = true;
      form.requestSubmit();
    });
  }

  function importNow(button) {
    var box = button.closest("[data-import-form]");
    var form = box && document.getElementById(box.getAttribute("data-import-form"));
    if (!form) return;
    var dryRun = form.elements.namedItem("dry_run");
    if (dryRun) dryRun.checked = false;
    button.disabled = true;
    form.requestSubmit();
  }

  /* ---------- wiring ---------- */

  function initWorkspace(ws) {
    if (!ws || ws.hasAttribute("data-ready")) return;
    ws.setAttribute("data-ready", "");
    forgetAssignment(ws.getAttribute("data-completed"));
    var form = one("#answer-form", ws);
    if (form) {
      if (ws.getAttribute("data-restore-draft") === "true") restoreDraft(form);
      form.addEventListener("change", function () { saveDraft(form); });
      form.addEventListener("input", function () { saveDraft(form); });
      all("[data-kind=preference]", form).forEach(function (fieldset) {
        syncStrength(fieldset);
        fieldset.addEventListener("change", function () { syncStrength(fieldset); });
      });
      all("[data-ranking]", form).forEach(initRanking);
    }
    watchTabs(ws);
    tickTimer();
    // Keep keyboard users in place after a swap: the focused element was replaced.
    if (!document.activeElement || document.activeElement === document.body || !document.contains(document.activeElement)) {
      ws.focus({ preventScroll: true });
    }
  }

  // On a phone the responses stack; the sticky tabs show which one is on screen.
  function watchTabs(ws) {
    var tabs = all(".response-tab", ws);
    if (!tabs.length || !("IntersectionObserver" in window)) return;
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        tabs.forEach(function (tab) {
          var current = tab.getAttribute("href") === "#" + entry.target.id;
          if (current) tab.setAttribute("aria-current", "true"); else tab.removeAttribute("aria-current");
        });
      });
    }, { rootMargin: "-45% 0px -50% 0px" });
    all(".response", ws).forEach(function (response) { observer.observe(response); });
  }

  function onClick(event) {
    var action = event.target.closest && event.target.closest("[data-action]");
    var menu = openSkipMenu();
    if (menu && !menu.contains(event.target)) menu.open = false;
    if (!action) return;
    switch (action.getAttribute("data-action")) {
      case "guidelines": toggleGuidelines(); break;
      case "close-guidelines": setGuidelines(false); break;
      case "help": toggleHelp(); break;
      case "close-dialog": action.closest("dialog").close(); break;
      case "diff": toggleDifferences(); break;
      case "import-now": importNow(action); break;
    }
  }

  function onSubmit(event) {
    var form = event.target;
    if (form.id !== "answer-form") return;
    var spent = form.elements.namedItem("time_spent_ms");
    var id = form.getAttribute("data-assignment-id");
    // Measured once per rendered form, so a resent form is byte-identical and counts once.
    if (spent && !spent.value && id) spent.value = String(Date.now() - startedAt(id));
  }

  function init() {
    forgetStaleEntries();
    document.addEventListener("keydown", onKeyDown);
    document.addEventListener("click", onClick);
    document.addEventListener("submit", onSubmit, true);
    document.body.addEventListener("htmx:load", function (event) {
      var element = event.detail && event.detail.elt;
      if (element && element.id === "workspace") initWorkspace(element);
      else if (element && element.id === "rater-stats") tickTimer();
    });
    document.body.addEventListener("htmx:sendError", function () {
      toast(document.body.getAttribute("data-msg-network"));
    });
    document.body.addEventListener("htmx:responseError", function (event) {
      var status = event.detail && event.detail.xhr ? event.detail.xhr.status : "?";
      toast(fill(document.body.getAttribute("data-msg-server"), { status: status }));
    });
    initWorkspace(workspace());
    all("form[data-dropzone]").forEach(initDropZone);
    window.setInterval(tickTimer, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
