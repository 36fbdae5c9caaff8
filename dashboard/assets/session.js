// A session that expired, or was signed out in another tab, sends the analyst to the sign-in
// page (and back here after it) instead of leaving a dashboard whose every update fails with 401.
(function () {
  const originalFetch = window.fetch;
  window.fetch = async function (...args) {
    const response = await originalFetch.apply(this, args);
    const target = args[0] && args[0].url ? args[0].url : String(args[0]);
    if (response.status === 401 && target.includes("/_dash-")) {
      const here = window.location.pathname + window.location.search;
      window.location.assign("/login?next=" + encodeURIComponent(here));
    }
    return response;
  };
})();
