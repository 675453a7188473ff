// Keyboard shortcuts and decision timing for the comparison queue (/compare/).
// htmx swaps #compare-task after each answer, so every handler looks the form up when it runs.
(function () {
  "use strict";

  const KEYS = {
    "1": ["choice", "left"], ArrowLeft: ["choice", "left"],
    "2": ["choice", "right"], ArrowRight: ["choice", "right"],
    t: ["choice", "tie"], b: ["choice", "both_bad"],
    "7": ["confidence", "1"], "8": ["confidence", "2"], "9": ["confidence", "3"],
  };
  let shownAt = performance.now();

  const currentForm = () => document.getElementById("compare-form");
  const isTyping = (target) =>
    target instanceof Element && target.closest("textarea, select, input:not([type=radio]):not([type=checkbox]), [contenteditable]");

  document.addEventListener("keydown", (event) => {
    const form = currentForm();
    if (!form || event.altKey || event.isComposing) return;
    if (event.ctrlKey || event.metaKey) {
      if (event.key === "Enter") { event.preventDefault(); form.querySelector("#compare-submit").click(); }
      return;
    }
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (KEYS[key]) {
      const [name, value] = KEYS[key];
      const input = form.querySelector(`input[name="${name}"][value="${value}"]`);
      if (input) { input.checked = true; event.preventDefault(); }
    } else if (key === "Enter" && !(event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement)) {
      event.preventDefault();
      form.querySelector("#compare-submit").click();
    } else if (key === "s") {
      event.preventDefault();
      form.querySelector("#compare-skip").click();
    } else if (key === "u" && document.getElementById("compare-undo")) {
      event.preventDefault();
      document.getElementById("compare-undo").click();
    } else if (key === "r") {
      event.preventDefault();
      form.querySelector("textarea[name=reason]").focus();
    }
  });

  // Runs in the capture phase, before htmx (or the browser) reads the form's values.
  document.addEventListener("submit", (event) => {
    if (event.target.id !== "compare-form") return;
    event.target.elements.decision_ms.value = String(Math.round(performance.now() - shownAt));
  }, true);

  // The undo button leaves when its window closes (the server refuses a late undo anyway).
  const expireUndo = () => {
    const undo = document.querySelector("#compare-task form.undo");
    if (undo) setTimeout(() => undo.remove(), 1000 * Number(undo.dataset.expiresIn || 0));
  };
  expireUndo();
  document.addEventListener("htmx:afterSettle", expireUndo);

  // htmx keeps focus on an element whose id survives the swap, so after Ctrl+Enter from the reason
  // box the next task's reason box would have it and "t" would type a letter instead of choosing a
  // tie. A new task takes the focus back; a task shown again (with form errors) keeps it. This runs
  // on afterSwap, in the same task as the swap: on afterSettle (20 ms later) it would take the focus
  // from a reason box a quick annotator had already opened with "r".
  let shownTask = document.getElementById("compare-task")?.dataset.task;
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.target.id !== "compare-task" && !event.target.querySelector?.("#compare-form")) return;
    shownAt = performance.now();
    const task = document.getElementById("compare-task");
    if (task && task.dataset.task !== shownTask) {
      shownTask = task.dataset.task;
      task.focus({ preventScroll: true });
    }
  });
})();
