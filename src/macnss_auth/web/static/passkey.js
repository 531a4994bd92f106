// The browser side of both passkey ceremonies, served as /static/passkey.js so that the
// page's Content-Security-Policy needs no inline script. Options come as JSON from the
// server (binary fields in base64url), PublicKeyCredential.parse*OptionsFromJSON turns
// them into what navigator.credentials wants, and toJSON() sends the answer back.
"use strict";
const $ = (id) => document.getElementById(id);

async function post(path, body, token) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
  const value = await response.json();
  if (!response.ok) throw Object.assign(new Error(value.reason || "error"), {problem: value});
  return value;
}

function show(outcome) {
  $("status").textContent = JSON.stringify(outcome);
  $("status").dataset.state = outcome.ok ? "ok" : "failed";
}

async function passkeyLogin(subject) {
  const challenge = await post("/v1/passkeys/challenges", subject ? {subject} : {});
  const options = JSON.parse(challenge.data.options);
  const credential = await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
  return post(`/v1/passkeys/challenges/${challenge.id}/verify`,
              {credential: credential.toJSON()});
}

async function passkeyRegister(subject, token, name) {
  // Without a subject, the login page's session names it (the server checks either way).
  const who = subject ? {subject} : {};
  const challenge = await post("/v1/passkeys/registrations", who, token);
  const options = JSON.parse(challenge.data.options);
  const credential = await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)});
  return post(`/v1/passkeys/registrations/${challenge.id}`,
              {...who, credential: credential.toJSON(), name}, token);
}

async function run(action) {
  $("status").dataset.state = "busy";
  try {
    const value = await action();
    show({ok: true, ...value});
  } catch (error) {
    show({ok: false, reason: error.problem ? error.problem.reason : error.name});
  }
}

// The standalone page (/passkey): buttons for each ceremony.
if ($("login")) {
  $("login").addEventListener("click", () => run(() => passkeyLogin($("subject").value.trim())));
  $("login-discoverable").addEventListener("click", () => run(() => passkeyLogin(null)));
  // Without a typed assertion the login page's session cookie (SameSite=Strict) authorizes.
  $("register").addEventListener("click", () => run(() => passkeyRegister(
    $("subject").value.trim(), $("token").value.trim(), $("device-name").value.trim())));
}

// The login page's steps: ask the device, then post the credential JSON with the form.
// Without JavaScript the form posts nothing and the server offers to start again.
function deviceStep(formId, buttonId, fieldId, ask) {
  const form = $(formId);
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $(buttonId).disabled = true;
    try {
      const credential = await ask(JSON.parse(form.dataset.options));
      $(fieldId).value = JSON.stringify(credential.toJSON());
    } catch (error) {
      $(fieldId).value = "";  // refused or cancelled: the server says so
    }
    form.submit();
  });
}

// Signing in (templates/steps/passkey.html), named or username-less.
deviceStep("passkey-step", "passkey-use", "passkey-response", (options) =>
  navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)}));
// Adding a passkey from the account page (templates/passkey_register.html).
deviceStep("passkey-register", "passkey-create", "passkey-created", (options) =>
  navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)}));
