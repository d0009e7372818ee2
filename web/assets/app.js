// The connection wizard: Manage Connections and the seeds' four steps, on
// the admin API of the daemon that serves this page.
//
// Rules kept throughout:
// - Everything that comes from the API (names, buckets, base paths, policy
//   values, error messages, check details) is put in the page as text:
//   textContent, input values, or elements built with el(). No HTML is ever
//   parsed from a string (the Content-Security-Policy's Trusted Types make
//   the browser refuse it anyway).
// - The bearer token is kept in memory (in sessionStorage only when the user
//   ticks the box), sent only in the Authorization header, never in a URL, a
//   cookie or the page.
"use strict";

(function () {
  const API = "/api/v1";
  const tokenKey = "s3connector.admin-token";
  const fields = ["name", "account_id", "bucket", "region", "base_path", "kms_key_arn"];
  const statusLabels = { draft: "Draft", validated: "Validated", active: "Active", disabled: "Disabled" };
  const stepOrder = ["type", "bucket", "iam", "validate"];

  const state = {
    token: "",
    regions: [],
    conn: null, // the connection the wizard works on, as the API shows it
    iam: null,
    touched: {},
    validating: false,
    afterSignIn: null,
  };

  const $ = (id) => document.getElementById(id);

  // el builds an element; string children become text nodes, never HTML.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-") || k.startsWith("aria-") || ["type", "id", "role", "scope", "title"].includes(k)) e.setAttribute(k, v === true ? "" : String(v));
      else throw new Error("el: attribute " + k + " is not allowed");
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function show(node, on) {
    node.hidden = !on;
  }

  function setBanner(node, text) {
    node.textContent = text || "";
    show(node, !!text);
  }

  // ---- The API ----------------------------------------------------------

  class APIError extends Error {
    constructor(status, code, message, fieldErrors, retryAfter) {
      super(message || "request failed (" + status + ")");
      this.status = status;
      this.code = code || "";
      this.fields = fieldErrors || {};
      this.retryAfter = retryAfter;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + state.token };
    const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(API + path, init);
    } catch (e) {
      throw new APIError(0, "network", "The daemon could not be reached (" + e.message + "). Check that it is running, then try again.");
    }
    let env = null;
    try {
      env = await resp.json();
    } catch (e) {
      throw new APIError(resp.status, "bad_answer", "The daemon answered " + resp.status + " without a JSON body.");
    }
    if (resp.ok && env && env.status === "success") return env.data;
    const err = (env && env.error) || {};
    const e = new APIError(resp.status, err.code, err.message, err.fields, resp.headers.get("Retry-After"));
    if (resp.status === 401) {
      forgetToken();
      signIn(err.message || "The token was refused.");
    }
    throw e;
  }

  const connPath = (name) => "/connections/" + encodeURIComponent(name);

  // ---- Token ------------------------------------------------------------

  function loadToken() {
    try {
      return sessionStorage.getItem(tokenKey) || "";
    } catch (e) {
      return "";
    }
  }

  function forgetToken() {
    state.token = "";
    try {
      sessionStorage.removeItem(tokenKey);
    } catch (e) {
      // Storage may be off; nothing was kept then.
    }
    show($("sign-out"), false);
  }

  function signIn(message) {
    showView("token");
    $("token").value = "";
    const err = $("token-error");
    err.textContent = message || "";
    $("token").setAttribute("aria-invalid", message ? "true" : "false");
    $("token").focus();
  }

  async function onTokenSubmit(ev) {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t === "") {
      $("token-error").textContent = "Enter the token.";
      $("token").setAttribute("aria-invalid", "true");
      $("token").focus();
      return;
    }
    state.token = t;
    if ($("token-keep").checked) {
      try {
        sessionStorage.setItem(tokenKey, t);
      } catch (e) {
        // Kept in memory only.
      }
    }
    $("token").value = "";
    $("token-error").textContent = "";
    show($("sign-out"), true);
    try {
      await loadRegions();
    } catch (e) {
      if (e.status !== 401) {
        signIn(e.message);
        forgetToken();
      }
      return;
    }
    const next = state.afterSignIn || showList;
    state.afterSignIn = null;
    next();
  }

  async function loadRegions() {
    const data = await api("GET", "/regions");
    state.regions = data.regions || [];
    const sel = $("f-region");
    const keep = sel.value;
    sel.replaceChildren(el("option", { text: "Select a region" }));
    sel.firstChild.value = "";
    for (const r of state.regions) {
      const o = el("option", { text: r });
      o.value = r;
      sel.append(o);
    }
    sel.value = keep;
  }

  // ---- Views ------------------------------------------------------------

  function showView(name) {
    for (const v of ["token", "list", "wizard"]) show($("view-" + v), v === name);
  }

  function showStep(step) {
    showView("wizard");
    setBanner($("wizard-error"), "");
    const idx = stepOrder.indexOf(step);
    for (const li of $("steps").children) {
      const i = stepOrder.indexOf(li.dataset.step);
      li.classList.toggle("done", i < idx);
      li.classList.toggle("current", i === idx);
      if (i === idx) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    for (const s of stepOrder) show($("step-" + s), s === step);
    $("wizard-title").textContent = state.conn ? "Connection " + state.conn.name : "Create an external AWS S3 connection";
    const h = $("step-" + step).querySelector("h2");
    h.focus();
  }

  // ---- Manage Connections -----------------------------------------------

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function statusBadge(status) {
    return el("span", { class: "badge status-" + (statusLabels[status] ? status : "other"), text: statusLabels[status] || status });
  }

  function cell(label, ...children) {
    return el("td", { "data-label": label }, ...children);
  }

  // A cell whose short value reads badly when wrapped (account, region).
  function nowrapCell(label, ...children) {
    return el("td", { "data-label": label, class: "nowrap" }, ...children);
  }

  async function showList(notice) {
    showView("list");
    state.conn = null;
    state.iam = null;
    setBanner($("list-notice"), notice || "");
    setBanner($("list-error"), "");
    $("list-title").focus();
    let data;
    try {
      data = await api("GET", "/connections");
    } catch (e) {
      if (e.status !== 401) setBanner($("list-error"), e.message);
      return;
    }
    renderList(data.connections || []);
  }

  function renderList(conns) {
    const body = $("connections-body");
    body.replaceChildren();
    show($("connections"), conns.length > 0);
    show($("list-empty"), conns.length === 0);
    for (const c of conns) {
      const lv = c.last_validation;
      const validation = lv
        ? el("span", {}, el("span", { class: lv.passed ? "ok" : "fail", text: lv.passed ? "Passed" : "Failed" }), " " + fmtTime(lv.at),
          lv.current ? null : el("span", { class: "muted", text: " (settings changed since)" }),
          lv.result ? el("span", { class: "detail", text: lv.result }) : null)
        : el("span", { class: "muted", text: "Never" });
      const run = c.last_run
        ? el("span", {}, el("span", { class: c.last_run.ok ? "ok" : "fail", text: c.last_run.ok ? "OK" : "Failed" }), " " + fmtTime(c.last_run.at),
          c.last_run.last_error ? el("span", { class: "detail", text: c.last_run.last_error }) : null)
        : el("span", { class: "muted", text: c.run_state ? c.run_state : "—" });
      const status = el("span", {}, statusBadge(c.status), c.status_reason ? el("span", { class: "detail", text: c.status_reason }) : null,
        c.run_problem ? el("span", { class: "detail fail", text: "Not running: " + c.run_problem }) : null);
      const tr = el("tr", { "data-name": c.name, "data-status": c.status },
        el("th", { scope: "row", "data-label": "Name", class: "nowrap" }, c.name),
        cell("Type", "AWS S3 · own bucket"),
        nowrapCell("AWS Account", c.account_id),
        cell("Bucket", c.bucket),
        nowrapCell("Region", c.region),
        cell("Base Path", c.base_path ? c.base_path : el("span", { class: "muted", text: "(whole bucket)" })),
        cell("Status", status),
        cell("Last Validation", validation),
        cell("Last Run", run),
        cell("Files Waiting", c.files_waiting === null || c.files_waiting === undefined ? el("span", { class: "muted", text: "—" }) : String(c.files_waiting)),
        cell("Actions", actionsFor(c)));
      body.append(tr);
    }
  }

  function actionButton(label, cls, conn, fn) {
    const b = el("button", { type: "button", class: cls, "aria-label": label + " " + conn.name, text: label });
    b.addEventListener("click", () => fn(conn, b));
    return b;
  }

  function actionsFor(c) {
    const box = el("div", { class: "row-actions" });
    if (c.read_only) {
      box.append(el("span", { class: "muted", text: c.read_only_reason || "managed in the configuration file" }));
      box.append(actionButton("IAM setup", "small", c, (conn) => openIAM(conn, true)));
      return box;
    }
    switch (c.status) {
      case "draft":
        box.append(actionButton("Continue setup", "small primary", c, (conn) => openIAM(conn, false)));
        break;
      case "validated":
        box.append(actionButton("Continue setup", "small primary", c, openValidate));
        break;
      case "active":
        box.append(actionButton("Disable", "small", c, disableConnection));
        box.append(actionButton("IAM setup", "small", c, (conn) => openIAM(conn, true)));
        break;
      case "disabled":
        box.append(actionButton("Revalidate", "small primary", c, openValidate));
        break;
    }
    if (c.status === "draft" || c.status === "disabled") {
      box.append(actionButton("Delete", "small danger", c, deleteConnection));
    }
    return box;
  }

  async function disableConnection(c, button) {
    button.disabled = true;
    try {
      await api("POST", connPath(c.name) + "/disable");
      await showList("Connection " + c.name + " is disabled: it is no longer ingested. Files in the bucket were not touched.");
    } catch (e) {
      button.disabled = false;
      if (e.status !== 401) setBanner($("list-error"), e.message);
    }
  }

  async function deleteConnection(c, button) {
    if (!window.confirm("Delete the connection " + c.name + "? Nothing in the bucket is touched; the IAM role stays in your AWS account until you delete it.")) return;
    button.disabled = true;
    try {
      const data = await api("DELETE", connPath(c.name));
      await showList(data.note ? "Connection " + c.name + " deleted: " + data.note + "." : "Connection " + c.name + " deleted.");
    } catch (e) {
      button.disabled = false;
      if (e.status !== 401) setBanner($("list-error"), e.message);
    }
  }

  // ---- Step 1: Connection Type ------------------------------------------

  function startCreate() {
    state.conn = null;
    state.iam = null;
    $("type-aws-s3").checked = false;
    $("type-own-bucket").checked = false;
    updateType();
    resetBucketForm();
    showStep("type");
  }

  function updateType() {
    const aws = $("type-aws-s3").checked;
    show($("s3-type"), aws);
    if (!aws) $("type-own-bucket").checked = false;
    $("type-continue").disabled = !(aws && $("type-own-bucket").checked);
  }

  // ---- Step 2: S3 Bucket ------------------------------------------------

  function input(f) {
    return $("f-" + f);
  }

  function resetBucketForm() {
    state.touched = {};
    for (const f of fields) {
      input(f).value = "";
      setFieldError(f, "", "");
    }
    input("name").disabled = false;
    show($("bucket-back"), true);
    $("kms-details").open = false;
    setBanner($("bucket-error"), "");
  }

  function fillBucketForm(c) {
    resetBucketForm();
    for (const f of fields) input(f).value = c[f] || "";
    // The name cannot change (it names the IAM role), nor the type.
    input("name").disabled = true;
    show($("bucket-back"), false);
    $("kms-details").open = !!c.kms_key_arn;
  }

  function setFieldError(f, msg, source) {
    const p = $("err-" + f);
    p.textContent = msg ? fieldLabel(f) + " " + msg : "";
    p.dataset.source = msg ? source : "";
    input(f).setAttribute("aria-invalid", msg ? "true" : "false");
  }

  function fieldLabel(f) {
    return { name: "Connection Name", account_id: "AWS Account ID", bucket: "Bucket Name", region: "Region", base_path: "Base Path", kms_key_arn: "KMS Key ARN" }[f];
  }

  function checkField(f) {
    const rule = window.S3CRules && window.S3CRules[f];
    return rule ? rule(input(f).value, state.regions) : "";
  }

  function onFieldInput(f, ev) {
    // A field is checked once the user typed in it or left it; leaving an
    // untouched required field empty then says it is required.
    if (ev.type === "blur" && !state.touched[f] && input(f).value === "" && !input(f).required) return;
    state.touched[f] = true;
    setFieldError(f, checkField(f), "client");
  }

  async function onBucketSubmit(ev) {
    ev.preventDefault();
    setBanner($("bucket-error"), "");
    // Every rule at once, as the user would see them typing...
    let first = null;
    for (const f of fields) {
      if (input(f).disabled) continue;
      state.touched[f] = true;
      const msg = checkField(f);
      setFieldError(f, msg, "client");
      if (msg && !first) first = f;
    }
    // ...and then the server, which has the last word: it knows the names
    // already taken and the base paths other connections use, and its rules
    // are the ones that count should the two ever differ.
    const body = {};
    for (const f of fields) body[f] = input(f).value;
    const save = $("bucket-save");
    save.disabled = true;
    try {
      let c;
      if (state.conn) {
        const changes = {};
        for (const f of fields) {
          if (f !== "name" && body[f] !== (state.conn[f] || "")) changes[f] = body[f];
        }
        c = Object.keys(changes).length > 0 ? await api("PATCH", connPath(state.conn.name), changes) : state.conn;
      } else {
        c = await api("POST", "/connections", body);
      }
      state.conn = c;
      await openIAM(c, false);
    } catch (e) {
      if (e.status === 401) return;
      showServerErrors(e, first);
    } finally {
      save.disabled = false;
    }
  }

  function showServerErrors(e, clientFirst) {
    const names = Object.keys(e.fields || {});
    let first = null;
    for (const f of fields) {
      if (input(f).disabled) continue;
      if (e.fields && e.fields[f]) {
        setFieldError(f, e.fields[f], "server");
        if (!first) first = f;
      } else if (names.length > 0) {
        setFieldError(f, "", "");
      }
    }
    const unplaced = names.filter((f) => !fields.includes(f) || input(f).disabled);
    if (names.length === 0 || unplaced.length > 0) {
      setBanner($("bucket-error"), e.message);
    } else {
      setBanner($("bucket-error"), "Please correct the fields marked below.");
    }
    if (first === "kms_key_arn") $("kms-details").open = true;
    const target = first || clientFirst;
    if (target) input(target).focus();
  }

  // ---- Step 3: IAM Role -------------------------------------------------

  async function openIAM(c, readOnly) {
    state.conn = c;
    let iam;
    try {
      iam = await api("GET", connPath(c.name) + "/iam");
    } catch (e) {
      if (e.status === 401) {
        state.afterSignIn = () => openIAM(c, readOnly);
        return;
      }
      if (!$("view-wizard").hidden) {
        setBanner($("wizard-error"), e.message);
      } else {
        setBanner($("list-error"), e.message);
      }
      return;
    }
    state.iam = iam;
    renderIAM(c, iam, readOnly);
    showStep("iam");
  }

  function pretty(v) {
    return JSON.stringify(v, null, 2);
  }

  function renderIAM(c, iam, readOnly) {
    $("iam-account").textContent = c.account_id;
    $("iam-role-name").value = iam.role_name;
    $("iam-role-arn").textContent = "The connector assumes " + iam.role_arn + ".";
    $("iam-principal").textContent = iam.principal_arn;
    $("iam-external-id").value = iam.external_id;
    $("iam-trust").textContent = pretty(iam.trust_policy);
    $("iam-policy-name").textContent = iam.policy_name;
    $("iam-location").textContent = "s3://" + c.bucket + "/" + (c.base_path || "");
    $("iam-permissions").textContent = pretty(iam.permissions_policy);
    const kms = !!iam.kms_key_policy_statement;
    show($("iam-kms"), kms);
    $("iam-kms-arn").textContent = kms ? iam.kms_key_arn : "";
    $("iam-kms-statement").textContent = kms ? pretty(iam.kms_key_policy_statement) : "";
    $("iam-instructions").textContent = iam.instructions || "";
    $("copy-status").textContent = "";
    $("iam-confirm").checked = false;
    show($("iam-confirm-row"), !readOnly);
    show($("iam-continue"), !readOnly);
    show($("iam-back"), !readOnly);
    $("iam-continue").disabled = true;
    const ro = $("iam-readonly");
    if (readOnly) {
      setBanner(ro, c.read_only ? "This connection is " + (c.read_only_reason || "managed in the configuration file") + ": validate it with s3connector validate." :
        "This connection is " + (statusLabels[c.status] || c.status) + ". The IAM setup is shown for reference.");
    } else {
      setBanner(ro, "");
    }
  }

  async function copyFrom(id, button) {
    const node = $(id);
    const text = node.value !== undefined && node.tagName === "INPUT" ? node.value : node.textContent;
    const status = $("copy-status");
    const what = button.getAttribute("aria-describedby") ? $(button.getAttribute("aria-describedby")).textContent : node.labels && node.labels[0] ? node.labels[0].textContent : "Value";
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = what.trim() + " copied to the clipboard.";
    } catch (e) {
      // No clipboard access (an http:// address other than localhost):
      // select the text so that Ctrl+C or the menu copies it.
      if (node.tagName === "INPUT") {
        node.select();
      } else {
        const range = document.createRange();
        range.selectNodeContents(node);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      status.textContent = what.trim() + " is selected: press Ctrl+C (⌘C) to copy it.";
    }
  }

  // ---- Step 4: Validate -------------------------------------------------

  function openValidate(c) {
    state.conn = c;
    $("val-region").textContent = c.region;
    $("val-location").textContent = "s3://" + c.bucket + "/" + (c.base_path || "");
    $("validate-result").replaceChildren();
    $("validate").textContent = "Validate";
    $("activate").disabled = !c.can_activate;
    const lv = c.last_validation;
    if (lv && lv.current) {
      $("validate-result").append(el("p", { class: "muted" }, "Last validation " + fmtTime(lv.at) + ": " + (lv.passed ? "passed" : "failed") + (lv.result ? " — " + lv.result : "") + "."));
      if (!lv.passed) $("validate").textContent = "Revalidate";
    }
    showStep("validate");
  }

  function checkItem(ch) {
    const label = { pass: "Passed", fail: "Failed", skip: "Skipped" }[ch.state] || ch.state;
    return el("li", { class: "check-" + ch.state, "data-check": ch.name },
      el("span", { class: "badge state-" + ch.state, text: label }), " ",
      el("span", { class: "check-name", text: ch.name }),
      ch.detail ? el("span", { class: "detail", text: ch.detail }) : null,
      ch.error ? el("span", { class: "detail error-text", text: ch.error }) : null,
      ch.skipped_reason ? el("span", { class: "detail", text: "Skipped: " + ch.skipped_reason }) : null);
  }

  function renderValidation(v) {
    const box = $("validate-result");
    const ok = v.passed;
    const panel = el("div", { class: "result " + (ok ? "result-ok" : "result-fail"), id: "validation-outcome", "data-passed": ok ? "true" : "false" },
      el("h3", { id: "validation-message", text: v.message }),
      el("p", { text: v.summary }));
    if (ok && v.success_line) panel.append(el("p", { class: "success-line", id: "success-line", text: v.success_line }));
    if (!ok && v.failed_check) {
      const failed = (v.checks || []).find((c) => c.name === v.failed_check);
      panel.append(el("p", { id: "failed-check" }, "Failed check: ", el("strong", { text: v.failed_check }),
        failed && failed.error ? el("span", { class: "detail error-text", text: failed.error }) : null));
    }
    if (!ok && v.advice) {
      const adv = el("div", { class: "advice", id: "advice" },
        el("h4", { text: "What to check" }),
        el("p", { text: v.advice.headline }));
      const ul = el("ul", {});
      for (const item of v.advice.checks || []) ul.append(el("li", { text: item }));
      adv.append(ul);
      panel.append(adv);
    }
    const checks = el("ul", { class: "checks", "aria-label": "Checks" });
    for (const ch of v.checks || []) checks.append(checkItem(ch));
    const details = el("details", {}, el("summary", { text: "Checks (" + (v.checks || []).length + ")" }), checks);
    details.open = !ok;
    panel.append(details);
    box.replaceChildren(panel);
  }

  async function onValidate() {
    if (state.validating || !state.conn) return;
    state.validating = true;
    const b = $("validate");
    const label = b.textContent;
    b.disabled = true;
    b.textContent = "Validating…";
    $("activate").disabled = true;
    $("validate-result").replaceChildren(el("p", { class: "muted", text: "Validating: assuming the IAM role and checking the bucket…" }));
    try {
      const v = await api("POST", connPath(state.conn.name) + "/validate");
      state.conn = v.connection || state.conn;
      renderValidation(v);
      $("activate").disabled = !v.can_activate;
      b.textContent = v.passed ? "Validate again" : "Revalidate";
    } catch (e) {
      b.textContent = label;
      if (e.status === 401) return;
      let msg = e.message;
      if (e.status === 429 && e.retryAfter) msg += " (try again in " + e.retryAfter + " s)";
      $("validate-result").replaceChildren(el("p", { class: "banner error", role: "alert", text: msg }));
      $("activate").disabled = !(state.conn && state.conn.can_activate);
    } finally {
      b.disabled = false;
      state.validating = false;
    }
  }

  async function onActivate() {
    if (!state.conn) return;
    const b = $("activate");
    b.disabled = true;
    try {
      const c = await api("POST", connPath(state.conn.name) + "/activate");
      await showList("Connection " + c.name + " is now " + (statusLabels[c.status] || c.status) + ": it runs on its schedule.");
    } catch (e) {
      if (e.status === 401) return;
      $("validate-result").append(el("p", { class: "banner error", role: "alert", text: e.message }));
      b.disabled = !(state.conn && state.conn.can_activate);
    }
  }

  // ---- Wiring -----------------------------------------------------------

  function init() {
    $("token-form").addEventListener("submit", onTokenSubmit);
    $("sign-out").addEventListener("click", () => {
      forgetToken();
      signIn("");
    });
    $("create-new").addEventListener("click", startCreate);
    for (const b of document.querySelectorAll("button.cancel")) b.addEventListener("click", () => showList());

    $("type-aws-s3").addEventListener("change", updateType);
    $("type-own-bucket").addEventListener("change", updateType);
    $("type-continue").addEventListener("click", () => {
      if (!$("type-continue").disabled) showStep("bucket");
    });

    for (const f of fields) {
      for (const t of ["input", "change", "blur"]) input(f).addEventListener(t, (ev) => onFieldInput(f, ev));
    }
    $("step-bucket").addEventListener("submit", onBucketSubmit);
    $("bucket-back").addEventListener("click", () => showStep("type"));

    for (const b of document.querySelectorAll("button.copy")) b.addEventListener("click", () => copyFrom(b.dataset.copy, b));
    $("iam-confirm").addEventListener("change", () => {
      $("iam-continue").disabled = !$("iam-confirm").checked;
    });
    $("iam-back").addEventListener("click", () => {
      if (state.conn) fillBucketForm(state.conn);
      showStep("bucket");
    });
    $("iam-continue").addEventListener("click", () => {
      if ($("iam-confirm").checked && state.conn) openValidate(state.conn);
    });

    $("validate").addEventListener("click", onValidate);
    $("validate-back").addEventListener("click", () => {
      if (state.conn) openIAM(state.conn, false);
    });
    $("activate").addEventListener("click", onActivate);

    state.token = loadToken();
    if (state.token === "") {
      signIn("");
      return;
    }
    show($("sign-out"), true);
    loadRegions().then(() => showList(), (e) => {
      if (e.status !== 401) signIn(e.message);
    });
  }

  init();
})();
