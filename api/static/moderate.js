// The /moderate page's keyboard: j/k move, a approve, r reject, s spam, u undo (reopen), x select.
// Every action is a POST to /moderate/decide with the page's CSRF token; the server answers JSON.
// Text from comments is never inserted as HTML here: only textContent and attributes we set.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const rows = Array.from(document.querySelectorAll("article.comment"));
  const statusLine = document.getElementById("status");
  const undoStack = [];
  let current = -1;

  function focusRow(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("current", i === current));
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function selectedIds() {
    return rows.filter((row) => row.querySelector("input.select").checked).map((row) => row.dataset.id);
  }

  function say(message) {
    statusLine.textContent = message;
  }

  function updateCounts(counts) {
    for (const [status, n] of Object.entries(counts)) {
      const el = document.querySelector('[data-count="' + status + '"]');
      if (el) el.textContent = String(n);
    }
    document.title = document.title.replace(/^\(\d+\)/, "(" + counts.pending + ")");
  }

  function markRow(id, status, label) {
    const row = document.getElementById("comment-" + id);
    if (!row) return;
    if (status === "pending" && !label) label = row.dataset.engineLabel;  // reopen: the engine's label again
    row.dataset.status = status;
    const badge = row.querySelector(".status");
    badge.textContent = status;
    badge.className = "status status-" + status;
    let labelBadge = row.querySelector("header .label");
    if (label) {
      if (!labelBadge) {
        labelBadge = document.createElement("span");
        row.querySelector("header").appendChild(labelBadge);
      }
      labelBadge.className = "label label-" + label;
      labelBadge.textContent = label;
    } else if (labelBadge) {
      labelBadge.remove();
    }
    row.querySelector("input.select").checked = false;
  }

  // Decisions go to the server one at a time, in the order the keys were pressed: a second key
  // pressed before the first answer arrives acts on the row it was pressed on, after the first.
  let chain = Promise.resolve();

  function enqueue(task) {
    // A failed task is reported and the chain goes on: one error must not silence every later key.
    chain = chain.then(task).catch((err) => say("Error: " + err));
    return chain;
  }

  function shownStatus(id) {
    const row = document.getElementById("comment-" + id);
    return row ? row.dataset.status : "";
  }

  // `expect` is the status each comment had on screen when the key was pressed: the server refuses
  // (409) to decide a comment that has changed since, e.g. decided in another tab or by a colleague.
  async function decide(ids, action, remember, expect) {
    if (!ids.length) return;
    const body = new URLSearchParams();
    ids.forEach((id, i) => {
      body.append("ids", id);
      body.append("expect", expect[i]);
    });
    body.append("action", action);
    let response;
    let data;
    try {
      response = await fetch("/moderate/decide", {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        body: body,
        credentials: "same-origin",
      });
    } catch (err) {
      say("Network error: nothing was decided.");
      return;
    }
    if (response.status === 401) {
      window.location.assign("/moderate/login");
      return;
    }
    try {
      data = await response.json();
    } catch (err) {
      say("Refused: HTTP " + response.status + "; nothing was decided.");
      return;
    }
    if (!response.ok) {
      say("Refused: " + JSON.stringify(data.detail));
      return;
    }
    const done = [];
    const problems = [];
    for (const result of data.results) {
      if (result.error) {
        if (result.current) markRow(result.id, result.current.status, result.current.label);
        problems.push("Comment " + result.id + ": " + JSON.stringify(result.error.detail));
      } else {
        markRow(result.id, result.status, result.label);
        done.push(String(result.id));
      }
    }
    updateCounts(data.counts);
    if (remember && done.length) undoStack.push(done);
    const messages = [];
    if (done.length) {
      const verb = action === "reopen" ? "Reopened" : action === "approve" ? "Approved" : "Rejected";
      messages.push(verb + " " + done.length + " comment(s)" + (action === "reopen" ? "." : " (u to undo)."));
    }
    say(messages.concat(problems).join(" "));
  }

  function targetIds() {
    const selected = selectedIds();
    if (selected.length) return selected;
    return current >= 0 ? [rows[current].dataset.id] : [];
  }

  function act(action) {
    const ids = targetIds();
    const expect = ids.map(shownStatus);
    if (!selectedIds().length) focusRow(current + 1);
    return enqueue(() => decide(ids, action, true, expect));
  }

  function undo() {
    enqueue(() => {
      const last = undoStack.pop();
      if (!last) {
        say("Nothing to undo.");
        return undefined;
      }
      return decide(last, "reopen", false, last.map(shownStatus)).then(() =>
        focusRow(rows.findIndex((r) => r.dataset.id === last[0]))
      );
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    // A key held down repeats: fine for moving, but it must not decide row after row unread.
    if (event.repeat && event.key !== "j" && event.key !== "k") {
      event.preventDefault();
      return;
    }
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current - 1); break;
      case "a": act("approve"); break;
      case "r": act("reject"); break;
      case "s": act("spam"); break;
      case "x":
        if (current >= 0) {
          const box = rows[current].querySelector("input.select");
          box.checked = !box.checked;
        }
        break;
      case "u": undo(); break;
      default: return;
    }
    event.preventDefault();
  });

  // Buttons work without this script (plain form posts); with it they stay on the page.
  document.querySelectorAll("form.actions, form#bulk").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const action = event.submitter && event.submitter.value;
      if (!action) return;
      event.preventDefault();
      const ids = form.id === "bulk" ? selectedIds() : [form.querySelector('input[name="ids"]').value];
      if (form.id !== "bulk") focusRow(rows.findIndex((r) => r.dataset.id === ids[0]));
      const expect = ids.map(shownStatus);
      enqueue(() => decide(ids, action, action !== "reopen", expect));
    });
  });

  rows.forEach((row, i) => row.addEventListener("click", (event) => {
    if (event.target.tagName !== "BUTTON" && event.target.tagName !== "INPUT") focusRow(i);
  }));
  focusRow(0);
})();
