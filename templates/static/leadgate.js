// leadgate's one script: it only adds what a page can learn or do in the
// browser, and every page works without it. Served from /static/ so that
// the Content-Security-Policy needs no inline allowance (script-src 'self').
(function () {
  "use strict";

  // The connection-request form records the page address and the person's
  // timezone (policy 2.3) in its hidden page_url and timezone fields. The
  // server fills page_url when it knows better — the page that framed or
  // linked to the form, kept through a re-render — so the script only fills
  // an empty one, and never on the answer to a failed post, whose address is
  // the post's (/v1/leads), not a page anyone came from.
  function fillLeadForm(f) {
    if (!f.elements.page_url.value && !f.hasAttribute("data-rerender")) {
      f.elements.page_url.value = location.href;
    }
    try { f.elements.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  }

  // showError marks one field (or every radio of a group) invalid and puts
  // msg in its error element, made next to the field when the server did
  // not render one; msg "" clears both.
  function showError(f, name, msg) {
    var inputs = f.querySelectorAll("[name='" + name + "']");
    if (!inputs.length) { return; }
    var id = name + "-error";
    var err = document.getElementById(id);
    if (!msg) {
      if (err) { err.parentNode.removeChild(err); }
    } else {
      if (!err) {
        err = document.createElement("p");
        err.className = "error";
        err.id = id;
        // After the field's own block: the last input's .choice in a
        // group, the input itself elsewhere (the consent's after its policy
        // note, as the server renders it).
        var last = inputs[inputs.length - 1];
        var block = last.closest("fieldset") || last.closest(".field");
        block.appendChild(err);
      }
      err.textContent = msg;
    }
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (s) { return s && s !== id; });
      if (msg) {
        input.setAttribute("aria-invalid", "true");
        ids.push(id);
      } else {
        input.removeAttribute("aria-invalid");
      }
      if (ids.length) { input.setAttribute("aria-describedby", ids.join(" ")); } else { input.removeAttribute("aria-describedby"); }
    }
  }

  // problem is the message for a field the browser finds invalid, in the
  // page's language: the field's own data-msg-required / data-msg-invalid,
  // else the form's. The browser's own bubble would be in the browser's
  // language and show one field at a time.
  function problem(f, input) {
    var v = input.validity;
    if (v.valid) { return ""; }
    if (v.valueMissing) {
      return input.getAttribute("data-msg-required") || f.getAttribute("data-msg-required");
    }
    return input.getAttribute("data-msg-invalid") || f.getAttribute("data-msg-invalid");
  }

  // validate checks every field the browser can check and shows each
  // problem next to its field; it focuses the first and reports whether
  // there was none. The server checks everything again (and more).
  function validate(f) {
    var first = null, seen = {};
    for (var i = 0; i < f.elements.length; i++) {
      var input = f.elements[i];
      if (!input.name || seen[input.name] || !input.willValidate) { continue; }
      seen[input.name] = true;
      var msg = problem(f, input);
      // A field the server marked stays marked until it is checked here
      // and found valid by the browser: only browser-checkable fields are
      // cleared, the rest keep the server's message.
      if (msg || input.required || input.type === "email") { showError(f, input.name, msg); }
      if (msg && !first) { first = input; }
    }
    if (first) { first.focus(); }
    return !first;
  }

  // busy disables the button and shows its busy label, so a second click
  // (or Enter) does not post the request again.
  function busy(f) {
    var b = f.querySelector("button[type=submit]");
    if (!b) { return; }
    if (b.getAttribute("data-busy")) { b.textContent = b.getAttribute("data-busy"); }
    b.disabled = true;
    b.setAttribute("aria-disabled", "true");
  }

  // keptKey names what a language link keeps of the form in the tab's
  // sessionStorage: the values go with the person to the page in the other
  // language without passing through a URL (they are personal) or a post
  // (posting is sending the request), and are removed as soon as read.
  var keptKey = "leadgate.form";
  // notKept are fields a new page must make afresh.
  var notKept = { form_token: true, website: true, lang: true, timezone: true };

  // keepOnLanguageSwitch makes the language links carry what was typed:
  // without it a person who switched language on the form shown again
  // after an error would lose all they typed.
  function keepOnLanguageSwitch(f) {
    var links = document.querySelectorAll(".langs a[hreflang]");
    for (var i = 0; i < links.length; i++) {
      links[i].addEventListener("click", function () {
        var kept = [];
        for (var j = 0; j < f.elements.length; j++) {
          var el = f.elements[j];
          if (!el.name || notKept[el.name] || el.type === "submit") { continue; }
          if (el.type === "checkbox" || el.type === "radio") {
            if (el.checked) { kept.push([el.name, el.value]); }
          } else if (el.value) {
            kept.push([el.name, el.value]);
          }
        }
        try { sessionStorage.setItem(keptKey, JSON.stringify(kept)); } catch (e) {}
      });
    }
  }

  // restoreKept fills the form with what a language link kept, once.
  function restoreKept(f) {
    var kept;
    try {
      kept = JSON.parse(sessionStorage.getItem(keptKey) || "null");
      sessionStorage.removeItem(keptKey);
    } catch (e) { return; }
    if (!kept || !kept.length) { return; }
    var boxes = f.querySelectorAll("input[type=checkbox], input[type=radio]");
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = false; }
    for (var k = 0; k < kept.length; k++) {
      var name = kept[k][0], value = String(kept[k][1]);
      var els = f.querySelectorAll("[name='" + name.replace(/[^a-z_]/g, "") + "']");
      for (var m = 0; m < els.length; m++) {
        var el = els[m];
        if (el.type === "checkbox" || el.type === "radio") {
          if (el.value === value) { el.checked = true; }
        } else {
          el.value = value;
        }
      }
    }
  }

  function setUp() {
    var f = document.getElementById("lead-form");
    if (!f) { return; }
    restoreKept(f);
    fillLeadForm(f);
    keepOnLanguageSwitch(f);
    // Our messages instead of the browser's: without the script the
    // browser checks (and the server answers 422 with its own).
    f.noValidate = true;
    var sent = false;
    f.addEventListener("submit", function (ev) {
      if (sent || !validate(f)) {
        ev.preventDefault();
        return;
      }
      sent = true;
      busy(f);
    });
    // Back from the thanks page the browser may restore this page as it
    // was left, busy: a person must be able to send again.
    window.addEventListener("pageshow", function (ev) {
      if (!ev.persisted) { return; }
      sent = false;
      var b = f.querySelector("button[type=submit]");
      if (b) {
        b.disabled = false;
        b.removeAttribute("aria-disabled");
        if (b.getAttribute("data-label")) { b.textContent = b.getAttribute("data-label"); }
      }
    });
  }

  // A page may load the script in its head or at its end.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
