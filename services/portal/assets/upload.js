// Casewire portal: uploads with a progress bar, and files dropped on the
// form. The form posts to the portal as it would without this script
// (which streams it to the storage API with the person's token); here it
// goes by XMLHttpRequest, the only browser API that reports upload
// progress, and a refusal is shown beside the form with the API's reason.
"use strict";
(function () {
  const form = document.querySelector("form.upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const input = form.querySelector("input[type=file]");
  const bar = form.querySelector("progress");
  const error = form.querySelector("[role=alert]");

  function send() {
    if (!input.files.length) return;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        location.reload();
        return;
      }
      let why = {};
      try {
        why = JSON.parse(xhr.responseText);
      } catch (err) {
        why = {};
      }
      bar.hidden = true;
      error.textContent = (why.message || "The upload was refused.") + (why.code ? " (" + why.code + ")" : "");
    });
    xhr.addEventListener("error", () => {
      bar.hidden = true;
      error.textContent = "The upload could not be sent.";
    });
    error.textContent = "";
    bar.value = 0;
    bar.hidden = false;
    xhr.send(new FormData(form));
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  form.addEventListener("dragover", (e) => {
    e.preventDefault();
    form.classList.add("drop");
  });
  form.addEventListener("dragleave", () => form.classList.remove("drop"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("drop");
    if (!e.dataTransfer.files.length) return;
    input.files = e.dataTransfer.files;
    send();
  });
})();
