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
