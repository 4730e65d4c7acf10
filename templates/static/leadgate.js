// leadgate's one script: it only adds what a page can learn in the browser,
// and every page works without it. Served from /static/ so that the
// Content-Security-Policy needs no inline allowance (script-src 'self').
(function () {
  "use strict";

  // The connection-request form records the page address and the person's
  // timezone (policy 2.3) in its hidden page_url and timezone fields.
  function fillLeadForm() {
    var f = document.getElementById("lead-form");
    if (!f) { return; }
    f.elements.page_url.value = location.href;
    try { f.elements.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  }

  // A page may load the script in its head or at its end.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fillLeadForm);
  } else {
    fillLeadForm();
  }
})();
