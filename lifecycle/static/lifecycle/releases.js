// The "Start a release" form: progressive fields only for progressive strategies, the
// smoke test only for blue-green, and each strategy's default steps until edited.
(function () {
  var select = document.getElementById("release-strategy");
  if (!select) { return; }
  var fields = document.getElementById("progressive-fields");
  var smoke = document.getElementById("smoke-fields");
  var steps = document.getElementById("release-steps");
  var defaults = JSON.parse(document.getElementById("release-default-steps").textContent);
  var edited = false;
  steps.addEventListener("input", function () { edited = true; });
  function show() {
    fields.hidden = select.value === "direct";
    smoke.hidden = select.value !== "blue_green";
  }
  select.addEventListener("change", function () {
    show();
    if (!edited && defaults[select.value]) { steps.value = defaults[select.value]; }
  });
  show();
})();
