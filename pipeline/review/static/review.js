// Keyboard shortcuts for the review pages. Served as a file (the CSP allows no inline script);
// every action also works without JavaScript through the forms and links on the page.
(function () {
  "use strict";

  const page = document.body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const help = document.getElementById("help");
  const rejectDialog = document.getElementById("reject-dialog");
  let onReason = null; // what picking a rejection reason does on this page

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function anyDialogOpen() {
    return Array.from(document.querySelectorAll("dialog")).some((d) => d.open);
  }

  function follow(id) {
    const link = document.getElementById(id) || document.querySelector(id);
    if (link && link.href) window.location.assign(link.href);
  }

  function undo() {
    const form = document.getElementById("undo-form");
    if (form) form.requestSubmit();
  }

  function askReason(then) {
    if (!rejectDialog) return;
    onReason = then;
    rejectDialog.showModal();
  }

  if (rejectDialog) {
    const reasons = Array.from(rejectDialog.querySelectorAll("button[data-reason]"));
    reasons.forEach((button) => {
      button.addEventListener("click", () => {
        rejectDialog.close();
        if (onReason) onReason(button.dataset.reason);
      });
    });
    rejectDialog.addEventListener("keydown", (event) => {
      const n = Number.parseInt(event.key, 10);
      if (n >= 1 && n <= reasons.length) {
        event.preventDefault();
        reasons[n - 1].click();
      }
    });
  }

  const helpLink = document.getElementById("help-link");
  if (helpLink && help) {
    helpLink.addEventListener("click", (event) => {
      event.preventDefault();
      help.showModal();
    });
  }

  // -- the queue --

  function queuePage() {
    const rows = Array.from(document.querySelectorAll("#queue tbody tr[data-id]"));
    const key = "dealwatch.queue." + window.location.search;
    let current = Math.min(Number.parseInt(sessionStorage.getItem(key) || "0", 10) || 0,
      Math.max(rows.length - 1, 0));
    const pickedCount = document.getElementById("picked-count");

    function select(index, scroll) {
      if (!rows.length) return;
      current = Math.max(0, Math.min(index, rows.length - 1));
      rows.forEach((row, i) => row.classList.toggle("current", i === current));
      sessionStorage.setItem(key, String(current));
      if (scroll) rows[current].scrollIntoView({ block: "nearest" });
    }

    function countPicked() {
      if (pickedCount) {
        pickedCount.textContent = String(document.querySelectorAll('input[name="pick"]:checked').length);
      }
    }

    function decide(decision, reason) {
      const row = rows[current];
      if (!row) return;
      // The decided row leaves the list, so the same position shows the next one after reload.
      sessionStorage.setItem(key, String(current));
      const form = document.createElement("form");
      form.method = "post";
      form.action = row.dataset.decide;
      const fields = {
        csrf_token: csrf, version: row.dataset.version, decision: decision,
        filters: document.body.dataset.filters || "", return: "queue",
        page: document.body.dataset.cursor || "",
      };
      if (reason) fields.reason = reason;
      Object.entries(fields).forEach(([name, value]) => {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.appendChild(input);
      });
      document.body.appendChild(form);
      form.submit();
    }

    rows.forEach((row, i) => {
      row.addEventListener("click", (event) => {
        if (event.target.closest("a, input, button, select")) return;
        select(i, false);
      });
    });
    document.querySelectorAll('input[name="pick"]').forEach((box) => box.addEventListener("change", countPicked));
    select(current, true);
    countPicked();

    return function (event) {
      switch (event.key) {
        case "j": case "ArrowDown": select(current + 1, true); break;
        case "k": case "ArrowUp": select(current - 1, true); break;
        case "Enter": case "o": if (rows[current]) window.location.assign(rows[current].dataset.href); break;
        case "x": {
          const box = rows[current] && rows[current].querySelector('input[name="pick"]');
          if (box) { box.checked = !box.checked; countPicked(); }
          break;
        }
        case "c": decide("confirm"); break;
        case "d": decide("defer"); break;
        case "r": if (rows[current]) askReason((reason) => decide("reject", reason)); break;
        case "n": follow('a[rel="next"]'); break;
        case "p": follow('a[rel="prev"]'); break;
        default: return false;
      }
      return true;
    };
  }

  // -- one candidate --

  function candidatePage() {
    const form = document.getElementById("decide-form");
    const edit = document.getElementById("edit");
    const reason = document.getElementById("reason");
    // The page opens at the top, on the headline, the date and "Open original"; evidence far
    // down the article is quoted under them, with a link to its place.

    function submitWith(buttonId) {
      const button = document.getElementById(buttonId);
      if (form && button) form.requestSubmit(button);
    }

    function rejectAsking() {
      askReason((code) => {
        reason.value = code;
        submitWith("btn-reject");
      });
    }

    // Reject with no reason chosen asks for one, rather than sending the form back with an error.
    const rejectButton = document.getElementById("btn-reject");
    if (rejectButton && reason) {
      rejectButton.addEventListener("click", (event) => {
        if (reason.value) return;
        event.preventDefault();
        rejectAsking();
      });
    }

    return function (event) {
      switch (event.key) {
        case "j": follow("next-link"); break;
        case "k": follow("prev-link"); break;
        case "c": submitWith("btn-confirm"); break;
        case "d": submitWith("btn-defer"); break;
        case "r": if (reason) rejectAsking(); break;
        case "e":
          if (edit) {
            edit.open = true;
            const first = edit.querySelector("select, input");
            if (first) first.focus();
          }
          break;
        default: return false;
      }
      return true;
    };
  }

  const pageKeys = page === "queue" ? queuePage() : page === "candidate" ? candidatePage() : null;

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (anyDialogOpen()) return; // a dialog handles its own keys (Esc closes it)
    let handled = pageKeys ? pageKeys(event) : false;
    if (!handled) {
      handled = true;
      switch (event.key) {
        case "?": if (help) help.showModal(); break;
        case "u": undo(); break;
        case "g": window.location.assign(document.querySelector(".crumbs a") ? document.querySelector(".crumbs a").href : "/queue"); break;
        default: handled = false;
      }
    }
    if (handled) event.preventDefault();
  });
})();
