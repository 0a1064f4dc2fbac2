// Casewire portal: drag a card to another column to move the case. The
// move goes through the portal (and so the API and the policy); a refusal
// puts the card back and shows the reason. Without this script, each
// card's own form does the same.
"use strict";
(function () {
  const board = document.querySelector(".board");
  if (!board) return;
  const error = document.getElementById("board-error");
  let dragged = null;

  function say(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  board.addEventListener("dragstart", (e) => {
    const card = e.target.closest(".card");
    if (!card) return;
    dragged = card;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.case);
  });

  board.addEventListener("dragover", (e) => {
    if (dragged && e.target.closest(".column")) e.preventDefault();
  });

  board.addEventListener("drop", async (e) => {
    const column = e.target.closest(".column");
    if (!dragged || !column) return;
    e.preventDefault();
    const card = dragged;
    dragged = null;
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
