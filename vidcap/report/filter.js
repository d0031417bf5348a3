(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("#gallery-grid .item"));
  var motion = document.getElementById("f-motion"), tag = document.getElementById("f-tag");
  var kind = document.getElementById("f-kind"), count = document.getElementById("f-count");
  function apply() {
    var shown = 0;
    items.forEach(function (it) {
      var m = it.getAttribute("data-motion"), kinds = it.getAttribute("data-kind").split(" ");
      var tags = it.getAttribute("data-tags").split("\n");
      var ok = (!motion.value || (motion.value === "__none__" ? m === "" : m === motion.value))
        && (!tag.value || tags.indexOf(tag.value) >= 0)
        && (!kind.value || (kind.value === "problem" ? kinds.indexOf("random") < 0 : kinds.indexOf(kind.value) >= 0));
      it.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + items.length + " rows shown";
  }
  [motion, tag, kind].forEach(function (el) { el.addEventListener("change", apply); });
  apply();
  document.body.setAttribute("data-report-js", "ready");
}());
