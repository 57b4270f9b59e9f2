/* CrowdFab dashboard: live printer cards and queue (server-sent events), local times, the two-step submit. */
(function () {
  "use strict";

  var textsNode = document.getElementById("texts");
  var texts = textsNode ? JSON.parse(textsNode.textContent) : {};
  var me = Number(document.body.dataset.member || 0);
  var manager = document.body.dataset.manager === "1";
  var lang = document.documentElement.lang || "en";

  function t(key) { return texts[key] || key; }

  function setText(node, text) {
    if (node && node.textContent !== text) { node.textContent = text; }
  }

  function setHidden(node, hidden) {
    if (node && node.hidden !== hidden) { node.hidden = hidden; }
  }

  function clock(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var when = Date.parse(node.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      var date = new Date(when);
      node.textContent = node.dataset.local === "datetime"
        ? date.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" })
        : clock(when / 1000);
    });
  }

  function formatTemp(pair) {
    var actual = pair[0] === null ? "?" : Math.round(pair[0]);
    var target = pair[1] === null ? "?" : Math.round(pair[1]);
    return actual + "/" + target + "°C";
  }

  /* The same order as the server's cards: nozzles, bed, chamber, then the rest. */
  function heaterRank(name) {
    if (name.indexOf("tool") === 0 || name === "hotend") { return 0; }
    return name === "bed" ? 1 : name === "chamber" ? 2 : 3;
  }

  function heaterName(name) {
    var tool = /^tool([0-9]{1,2})$/.exec(name);
    if (texts["js.heater." + name]) { return texts["js.heater." + name]; }
    return tool ? t("js.heater.tool").replace("{n}", Number(tool[1]) + 1) : name;
  }

  function heaterOrder(a, b) {
    return heaterRank(a) - heaterRank(b) || (a < b ? -1 : a > b ? 1 : 0);
  }

  function reading(label, value) {
    var outer = document.createElement("span");
    outer.className = "reading";
    var name = document.createElement("span");
    name.className = "reading-label";
    name.textContent = label;
    var text = document.createElement("span");
    text.className = "reading-value";
    text.textContent = value;
    outer.appendChild(name);
    outer.appendChild(document.createTextNode(" "));
    outer.appendChild(text);
    return outer;
  }

  /* Temperatures as one compact line of readings; rebuilt only when the heaters change, else just the numbers. */
  function fillTemps(node, temps) {
    var names = Object.keys(temps).sort(heaterOrder);
    var key = names.join(",");
    if (node.dataset.key !== key) {
      node.dataset.key = key;
      node.textContent = "";
      if (!names.length) { node.appendChild(reading(t("js.temperatures"), "—")); }
      names.forEach(function (name) {
        var one = reading(heaterName(name), "");
        one.classList.add("temp");
        one.dataset.heater = name;
        node.appendChild(one);
      });
    }
    var values = node.querySelectorAll(".temp .reading-value");
    names.forEach(function (name, i) { setText(values[i], formatTemp(temps[name])); });
  }

  function field(card, name) { return card.querySelector('[data-field="' + name + '"]'); }

  /* Bring one printer card up to date; touches only what changed, so 200 cards stay cheap. */
  function fillCard(card, c) {
    if (card.dataset.state !== c.state) { card.dataset.state = c.state; }
    setText(field(card, "state"), t("js.state." + c.state));
    setText(field(card, "material"), c.material || "—");
    fillTemps(field(card, "temps"), c.temps);
    var job = field(card, "job");
    var jobKey = c.job_id ? c.job_id + "|" + c.member : "";
    if (job.dataset.key !== jobKey) {
      job.dataset.key = jobKey;
      job.textContent = "";
      if (c.job_id) {
        var link = document.createElement("a");
        link.href = "/jobs/" + c.job_id;
        link.textContent = "#" + c.job_id;
        job.appendChild(link);
        job.appendChild(document.createTextNode(" · " + (c.member || "")));
      } else {
        job.textContent = "—";
      }
    }
    var progress = field(card, "progress");
    setHidden(progress, c.progress === null);
    if (c.progress !== null) {
      var bar = progress.querySelector("progress");
      if (Number(bar.value) !== c.progress) { bar.value = c.progress; }
      setText(field(card, "percent"), Math.round(c.progress) + " %");
      setText(field(card, "eta"), c.eta ? t("js.eta") + " " + clock(c.eta) : "");
    }
    var thumb = field(card, "thumb");
    var own = manager || c.job_member_id === me;
    var src = c.thumbnail && own ? "/jobs/" + c.job_id + "/thumbnail" : "";
    if (src && thumb.getAttribute("src") !== src) { thumb.setAttribute("src", src); }
    setHidden(thumb, !src);
    var message = field(card, "message");
    setText(message, c.message || "");
    setHidden(message, !c.message);
    var mayClear = c.state === "awaiting_bed_clear" && (manager || c.plate_owner === me);
    setHidden(field(card, "bed"), !mayClear);
    /* The plate's photo, beside "bed cleared", for those who may clear it; no photo: no image at all. */
    var plate = field(card, "plate");
    var plateSrc = mayClear && c.plate_photo ? "/jobs/" + c.plate_photo + "/snapshot" : "";
    if (plate) {
      var photo = plate.querySelector("img");
      if (plateSrc && photo.getAttribute("src") !== plateSrc) {
        photo.setAttribute("src", plateSrc);
        plate.setAttribute("href", "/jobs/" + c.plate_photo);
      }
      if (!plateSrc) { photo.removeAttribute("src"); }
      setHidden(plate, !plateSrc);
    }
  }

  function startLive() {
    var cards = document.querySelector("[data-live-cards]");
    var queue = document.querySelector("[data-live-queue]");
    var status = document.querySelector("[data-live-status]");
    if ((!cards && !queue) || !window.EventSource) { return; }
    var signature = null;
    var source = new EventSource("/events");
    source.addEventListener("open", function () { setText(status, t("js.live")); });
    source.addEventListener("error", function () { setText(status, t("js.reconnecting")); });
    if (cards) {
      var empty = document.querySelector("[data-live-empty]");
      var adding = {};
      /* A printer enrolled while the page is open: its card comes from the server, as the page's others did. */
      var addCard = function (c) {
        if (adding[c.id]) { return; }
        adding[c.id] = true;
        fetch("/printers/" + encodeURIComponent(c.id) + "?part=card", { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
          .then(function (html) {
            if (document.getElementById("printer-" + c.id)) { return; }
            var holder = document.createElement("div");
            holder.innerHTML = html;
            var card = holder.querySelector(".card");
            if (!card) { return; }
            localizeTimes(card);
            cards.appendChild(card);
            setHidden(empty, true);
            setText(status, t("js.printer_added"));
          })
          .catch(function () { setText(status, t("js.reconnecting")); })
          .then(function () { delete adding[c.id]; });
      };
      source.addEventListener("printers", function (event) {
        var data = JSON.parse(event.data);
        data.changed.forEach(function (c) {
          var card = document.getElementById("printer-" + c.id);
          if (card) { fillCard(card, c); } else if (cards.dataset.liveNew) { addCard(c); }
        });
        (data.removed || []).forEach(function (id) {
          var card = document.getElementById("printer-" + id);
          if (card && cards.dataset.liveNew) { card.remove(); }
        });
        if (cards.dataset.liveNew) { setHidden(empty, cards.children.length > 0); }
      });
    }
    if (queue) {
      source.addEventListener("queue", function (event) {
        var next = JSON.parse(event.data).signature;
        var changed = signature !== null && signature !== next;
        signature = next;
        if (!changed) { return; }
        fetch(queue.dataset.liveQueue, { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
          .then(function (html) {
            queue.innerHTML = html;
            localizeTimes(queue);
            setText(status, t("js.queue_changed"));
          })
          .catch(function () { setText(status, t("js.reconnecting")); });
      });
    }
  }

  /* Submit: the first step checks the file in place, so the chosen file stays in the form for the confirm. */
  function startSubmit() {
    var form = document.getElementById("submit-form");
    if (!form || !window.fetch || !window.DOMParser) { return; }
    /* The plates offered are those of the file checked: another file has its own (or none). */
    var file = document.getElementById("file");
    if (file) {
      file.addEventListener("change", function () {
        var choice = document.getElementById("plate-choice");
        if (choice) { choice.remove(); }
      });
    }
    form.addEventListener("submit", function (event) {
      if (!event.submitter || !event.submitter.hasAttribute("data-analyze")) { return; }
      event.preventDefault();
      var section = document.getElementById("analysis");
      var button = event.submitter;
      var body = new FormData(form);  /* before the section (which may hold the plate choice) is emptied */
      button.disabled = true;
      section.hidden = false;
      section.textContent = t("js.checking");
      fetch(button.formAction || form.action, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById("analysis");
          var oldError = document.querySelector("main > .error");
          if (oldError) { oldError.remove(); }
          var error = page.querySelector("main > .error");
          if (error) { form.parentNode.insertBefore(document.importNode(error, true), form); }
          var replacement = fresh ? document.importNode(fresh, true) : document.createElement("section");
          replacement.id = "analysis";
          replacement.querySelectorAll(".nojs-only").forEach(function (node) { node.remove(); });
          section.replaceWith(replacement);
          replacement.hidden = !fresh || fresh.hidden;
          var next = document.getElementById("confirm") || document.getElementById("plate");
          if (next) { next.focus(); }
        })
        .catch(function () { section.textContent = t("js.check_failed"); })
        .then(function () { button.disabled = false; });
    });
  }

  localizeTimes(document);
  startLive();
  startSubmit();
})();
