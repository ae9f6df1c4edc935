// Keeps the "Recent check-ins" table current without a reload. The page works without
// it: the server renders the same rows. No inline script (the Content-Security-Policy
// allows only this file), no library, nothing from a CDN.
"use strict";

(function () {
  const table = document.getElementById("recent-table");
  if (!table) return;
  const source = table.dataset.source;
  const body = table.querySelector("tbody");

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function when(iso) {
    return iso.replace("T", " ").slice(0, 16);
  }

  async function refresh() {
    let answer;
    try {
      answer = await fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (error) {
      return true; // offline for a moment: try again later
    }
    if (!answer.ok) return answer.status >= 500; // signed out: stop; an outage: keep trying
    const { checkins } = await answer.json();
    const rows = checkins.map((item) => {
      const row = document.createElement("tr");
      row.append(cell(when(item.checked_in_at)), cell(item.student), cell(item.event), cell(item.status), cell(item.source || ""));
      return row;
    });
    if (!rows.length) {
      const row = document.createElement("tr");
      const empty = cell("No check-ins yet.");
      empty.colSpan = 5;
      row.append(empty);
      rows.push(row);
    }
    body.replaceChildren(...rows);
    return true;
  }

  async function loop() {
    if (await refresh()) setTimeout(loop, 5000);
  }
  setTimeout(loop, 5000);
})();
