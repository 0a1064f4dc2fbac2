// Casewire portal: live updates. The portal's /live stream says which
// case changed (and only cases the policy lets this person see); the page
// is then fetched again, through the portal and the API, and each region
// marked data-region is swapped for its fresh copy. A region that holds
// the focus or something typed and not sent is left alone, so nothing the
// person is writing is lost. Without this script the pages work as they
// are, with a reload.
"use strict";
(function () {
  if (!document.querySelector("[data-region]") || !window.EventSource || !window.fetch) return;
  // A case's own page listens to that case only.
  const scope = document.querySelector("[data-live-case]");
  const only = scope ? scope.dataset.liveCase : null;
  const status = document.getElementById("live-status");
  let timer = null;

  function say(text) {
    if (status) status.textContent = text;
  }

  function edited(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    return Array.from(el.querySelectorAll("input, textarea, select")).some((i) => {
      if (i.type === "hidden") return false;
      if (i.tagName === "SELECT") {
        // Without a `selected` attribute the first option is the default.
        const initial = Array.from(i.options).findIndex((o) => o.defaultSelected);
        return i.selectedIndex !== Math.max(initial, 0);
      }
      if (i.type === "checkbox" || i.type === "radio") return i.checked !== i.defaultChecked;
      return i.value !== i.defaultValue;
    });
  }

  async function refresh() {
    timer = null;
    // A card being dragged keeps its board as it is until it is dropped.
    if (document.querySelector("[data-dragging]")) {
      timer = setTimeout(refresh, 500);
      return;
    }
    let r;
    try {
      r = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (err) {
      return;
    }
    if (!r.ok || r.redirected) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html");
    let swapped = 0;
    document.querySelectorAll("[data-region]").forEach((el) => {
      const next = fresh.getElementById(el.id);
      if (!next || edited(el) || next.isEqualNode(el)) return;
      el.replaceWith(document.importNode(next, true));
      swapped += 1;
    });
    if (swapped) {
      say("Updated " + new Date().toLocaleTimeString());
      document.dispatchEvent(new CustomEvent("casewire:updated"));
    }
  }

  // Search as you type: the list's rows follow the words, the address
  // keeps the query (so reload and back work), the field keeps the focus.
  const search = document.querySelector("form.filters input[type=search]");
  let typing = null;
  if (search) {
    search.addEventListener("input", () => {
      if (typing) clearTimeout(typing);
      typing = setTimeout(() => {
        const query = new URLSearchParams(new FormData(search.form));
        history.replaceState(null, "", "/cases?" + query.toString());
        refresh();
      }, 250);
    });
  }

  function onCase(e) {
    let change;
    try {
      change = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    if (only && change.case !== only) return;
    // A burst of events (a command often makes several) is one fetch.
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  }

  // EventSource retries a dropped stream by itself, but gives up for good
  // when the portal refuses one (a status, e.g. too many open streams or
  // the API unreachable); then it is tried again later, less and less often.
  let wait = 15000;
  function connect() {
    const source = new EventSource("/live");
    source.addEventListener("open", () => {
      wait = 15000;
      say("Live");
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) {
        say("Reconnecting…");
        return;
      }
      say("Not live (trying again in " + Math.round(wait / 1000) + " s)");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 300000);
    });
    source.addEventListener("case", onCase);
  }
  connect();
})();
