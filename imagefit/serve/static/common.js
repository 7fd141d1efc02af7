"use strict";
// Shared by the pages: the bearer token (kept for this tab only) and JSON requests that carry it.
const imagefit = (() => {
  const KEY = "imagefit-token";
  const token = () => sessionStorage.getItem(KEY) || "";
  const headers = () => (token() ? { Authorization: "Bearer " + token() } : {});

  function askToken(onToken) {
    const form = document.getElementById("token-form");
    form.hidden = false;
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById("token").value.trim());
      form.hidden = true;
      onToken();
    };
  }

  async function request(url, options = {}) {
    const response = await fetch(url, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = { error: `the server answered ${response.status} without JSON` };
    }
    return { status: response.status, ok: response.ok, body };
  }

  async function blobUrl(url) {
    const response = await fetch(url, { headers: headers() });
    return response.ok ? URL.createObjectURL(await response.blob()) : null;
  }

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  return { askToken, request, blobUrl, element };
})();
