// Small progressive enhancements; every page works without them.

// htmx requests carry the CSRF token from the cookie: it is rotated at sign-in, so a
// token rendered into the page earlier would be stale.
document.addEventListener("htmx:configRequest", (event) => {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  if (cookie) event.detail.headers["X-CSRFToken"] = decodeURIComponent(cookie.split("=")[1]);
});
document.addEventListener("htmx:afterSwap", () => {
  const main = document.getElementById("main");
  if (main && document.activeElement === document.body) main.focus({ preventScroll: true });
});

// Presence: opening a module is not editing it. The first change in one of the module's
// forms marks the heartbeat as editing and sends it at once; the 30 s poll keeps it alive.
function markEditing(event) {
  const presence = document.querySelector("#editors[data-presence]");
  if (!presence || presence.dataset.editing || !event.target.closest("main form[method=post]")) return;
  presence.dataset.editing = "1";
  const vals = JSON.parse(presence.getAttribute("hx-vals") || "{}");
  presence.setAttribute("hx-vals", JSON.stringify({ ...vals, editing: "1" }));
  htmx.trigger(presence, "lifecycle:editing");
}
document.addEventListener("input", markEditing);
document.addEventListener("change", markEditing);
