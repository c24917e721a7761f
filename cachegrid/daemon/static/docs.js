// Starts Swagger UI on /docs with CacheGrid's OpenAPI document. Every file
// comes from this server: no validator badge (it would ask a public service),
// nothing from a CDN. A token the dashboard was given in this browser tab
// (session storage) authorizes "Try it out" too; Authorize changes it.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  const ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    displayRequestDuration: true,
    onComplete: function () {
      const token = window.sessionStorage.getItem("cachegrid.token");
      if (token) {
        ui.preauthorizeApiKey("bearer", token);
      }
    },
  });
  window.ui = ui;
})();
