// Casewire portal: drag a card to another column to move the case. The
// move goes through the portal (and so the API and the policy); a refusal
// puts the card back and shows the reason. Without this script, each
// card's own form does the same.
"use strict";
// Listeners sit on the document: live updates swap the board's columns.
(function () {
  if (!document.querySelector(".board")) return;
  let dragged = null;

  function say(text) {
    const error = document.getElementById("board-error");
    error.textContent = text;
    error.hidden = !text;
  }

  function release() {
    if (dragged) dragged.removeAttribute("data-dragging");
    dragged = null;
  }

  document.addEventListener("dragstart", (e) => {
    const card = e.target.closest && e.target.closest(".board .card");
    if (!card) return;
    dragged = card;
    card.setAttribute("data-dragging", "");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.case);
  });

  document.addEventListener("dragend", release);

  document.addEventListener("dragover", (e) => {
    if (dragged && e.target.closest && e.target.closest(".column")) e.preventDefault();
  });

  document.addEventListener("drop", async (e) => {
    const column = e.target.closest && e.target.closest(".column");
    if (!dragged || !column) return;
    e.preventDefault();
    const card = dragged;
    release();
    const from = card.parentElement;
    const stage = column.dataset.stage;
    if (stage === card.dataset.stage) return;
    column.querySelector("ul").appendChild(card);
    const form = card.querySelector("form.move");
    const body = new URLSearchParams({
      csrf: form ? form.csrf.value : document.querySelector("input[name=csrf]").value,
      case: card.dataset.case,
      stage: stage,
    });
    const action = (form && form.action) || location.pathname + "/move";
    try {
      const r = await fetch(action, {
        method: "POST",
        headers: { "Accept": "application/json" },
        body: body,
        credentials: "same-origin",
      });
      if (r.ok) {
        say("");
        location.reload();
        return;
      }
      const why = await r.json().catch(() => ({}));
      from.appendChild(card);
      say((why.message || "The move was refused.") + (why.code ? " (" + why.code + ")" : ""));
    } catch (err) {
      from.appendChild(card);
      say("The move could not be sent: " + err);
    }
  });
})();
