// /api/docs: Swagger UI started from a file, as the Content-Security-Policy allows (no inline script).
(function () {
  "use strict";
  const container = document.getElementById("swagger-ui-container");
  const config = Object.assign({ url: container.dataset.specUrl, dom_id: "#swagger-ui-container" },
    JSON.parse(container.dataset.config || "{}"));
  window.ui = window.SwaggerUIBundle(config);
})();
