// The live test console: a WebSocket conversation with an agent (protocol in API.md).
(function () {
  const root = document.getElementById("console");
  if (!root) return;
  if (window.lifecycleConsole) window.lifecycleConsole.close();

  const $ = (id) => document.getElementById(id);
  const transcript = $("transcript"), events = $("events"), status = $("console-status");
  const input = $("message"), sendButton = document.querySelector("#say button[type=submit]");
  let socket = null, bubbles = {}, started = false;

  function setStatus(text) { status.textContent = text; }
  function enable(on) {
    input.disabled = sendButton.disabled = $("interrupt").disabled = $("end").disabled = !on;
    $("save-button").disabled = !started;
  }
  function line(list, text, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    li.textContent = text;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    return li;
  }
  function event(text, cls) { line(events, text, cls); }
  function bubble(id) {
    if (!bubbles[id]) {
      bubbles[id] = line(transcript, "", "agent");
      bubbles[id].dataset.responseId = id;
    }
    return bubbles[id];
  }
  function send(frame) { if (socket && socket.readyState === 1) socket.send(JSON.stringify(frame)); }
  function variables() {
    const out = {};
    $("variables").value.split("\n").forEach((row) => {
      const at = row.indexOf("=");
      if (at > 0) out[row.slice(0, at).trim()] = row.slice(at + 1).trim();
    });
    return out;
  }

  // Calls waiting for a person, by tool_call_id: a box each, until their tool_result.
  let waiting = {};
  function approvalBox(f) {
    const box = document.createElement("section");
    box.className = "card approval";
    box.dataset.approval = f.approval;
    const title = document.createElement("p");
    title.innerHTML = "<strong></strong> waits for approval";
    title.querySelector("strong").textContent = f.tool_name;
    const params = document.createElement("pre");
    params.textContent = JSON.stringify(f.parameters, null, 2);
    const outcome = document.createElement("p");
    outcome.className = "outcome muted";
    const link = document.createElement("a");
    link.href = `${root.dataset.approvalsPage}?approval=${f.approval}#approval-${f.approval}`;
    link.target = "_blank";
    link.textContent = "Open in Approvals";
    box.append(title, params, outcome, link);
    if (root.dataset.canDecide) {
      const comment = document.createElement("input");
      comment.placeholder = "Comment (optional)";
      comment.setAttribute("aria-label", "Comment");
      box.appendChild(comment);
      [["approve", "Approve", "primary"], ["reject", "Reject", "danger"]].forEach(([verb, label, cls]) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = cls;
        button.textContent = label;
        button.addEventListener("click", async () => {
          const response = await fetch(`${root.dataset.approvalsApi}${f.approval}/${verb}/`, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
            body: JSON.stringify({ comment: comment.value }),
          });
          if (!response.ok) {
            const body = await response.json().catch(() => ({}));
            outcome.textContent = (body.error && body.error.message) || `Refused (${response.status}).`;
          } else outcome.textContent = `${verb === "approve" ? "Approved" : "Rejected"}; the agent goes on…`;
        });
        box.appendChild(button);
      });
    }
    $("approvals").appendChild(box);
    waiting[f.tool_call_id] = box;
  }

  const handlers = {
    conversation_initiation_metadata(f) {
      started = true;
      setStatus(`Conversation ${f.conversation_id.slice(0, 8)} · version ${f.version}${f.draft ? " with unsaved changes" : ""}`);
      enable(true);
      input.focus();
    },
    agent_response_delta(f) { bubble(f.response_id).textContent += f.delta; },
    agent_response(f) {
      const b = bubble(f.response_id);
      b.textContent = f.text;
      b.classList.add("done");
      if (f.sources && f.sources.length) {
        const small = document.createElement("small");
        small.className = "sources";
        small.textContent = "Source: " + f.sources.map((s) => s.title).join(", ");
        b.appendChild(small);
      }
      if (f.latency_ms) event(`answered in ${f.latency_ms} ms`, "latency");
    },
    user_transcript() {},
    tool_call(f) { event(`tool call ${f.tool_name}(${JSON.stringify(f.parameters)})`, "tool"); },
    tool_result(f) {
      event(f.error ? `tool failed: ${f.error}` : `tool result ${JSON.stringify(f.result)}`, f.error ? "error" : "tool");
      const box = waiting[f.tool_call_id];
      if (box) {
        box.querySelector(".outcome").textContent = f.error ? `Not run: ${f.error}.` : "Approved: the tool ran.";
        box.querySelectorAll("button, input").forEach((el) => el.remove());
        box.classList.add("decided");
        delete waiting[f.tool_call_id];
      }
    },
    tool_approval_requested(f) {
      event(`waiting for a person to approve ${f.tool_name}`, "warn");
      approvalBox(f);
    },
    interruption(f) { event("interrupted", "warn"); },
    agent_response_correction(f) {
      const b = bubble(f.response_id);
      b.textContent = f.corrected + " …";
      b.classList.add("corrected");
      event(`corrected to what was said: “${f.corrected}”`, "warn");
    },
    ping(f) { send({ type: "pong", event_id: f.event_id }); },
    error(f) { event(`error ${f.code}: ${f.message}`, "error"); },
    test_result_saved(f) {
      const saved = $("saved");
      saved.hidden = false;
      saved.innerHTML = "";
      const link = document.createElement("a");
      link.href = root.dataset.results;
      link.textContent = "Saved. See the agent's test results.";
      saved.appendChild(link);
    },
    conversation_ended() { setStatus("Conversation ended. Save a result, or start again."); enable(false); },
  };

  function start() {
    if (socket) socket.close();
    bubbles = {};
    waiting = {};
    started = false;
    transcript.innerHTML = events.innerHTML = $("approvals").innerHTML = "";
    $("saved").hidden = true;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.ws);
    setStatus("Connecting…");
    socket.onopen = () => {
      const agent = {};
      if ($("prompt").value) agent.prompt = { prompt: $("prompt").value };
      if ($("first-message").value) agent.first_message = $("first-message").value;
      if ($("language").value) agent.language = $("language").value;
      send({ type: "conversation_initiation_client_data", dynamic_variables: variables(), conversation_config_override: { agent } });
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      (handlers[frame.type] || (() => event(frame.type)))(frame);
    };
    socket.onclose = (e) => {
      enable(false);
      const reasons = { 4401: "sign in again", 4403: "not allowed", 4404: "agent not found" };
      if (e.code !== 1000 && e.code !== 1005) setStatus(`Disconnected (${e.code}${reasons[e.code] ? ": " + reasons[e.code] : ""}).`);
    };
  }

  $("start").addEventListener("click", start);
  $("end").addEventListener("click", () => send({ type: "end_conversation" }));
  $("interrupt").addEventListener("click", () => send({ type: "user_activity" }));
  $("say").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    line(transcript, text, "user");
    send({ type: "user_message", text });
    input.value = "";
  });
  $("save").addEventListener("submit", (e) => {
    e.preventDefault();
    send({ type: "save_test_result", rating: parseInt($("rating").value, 10), status: $("result-status").value, notes: $("notes").value });
  });
  window.lifecycleConsole = { close: () => socket && socket.close(1000) };
  // Leaving the page (a boosted link swaps it in place) ends the socket too.
  document.addEventListener("htmx:beforeSwap", () => window.lifecycleConsole && window.lifecycleConsole.close(), { once: true });
})();
