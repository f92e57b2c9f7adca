// A delivery just requested: open its page as soon as the delivery service shows it.
const element = document.getElementById("scheduling");
const url = element?.dataset.detailsUrl;

async function check() {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      window.location.reload();
      return;
    }
  } catch {
    // try again
  }
  setTimeout(check, 1000);
}

if (url) setTimeout(check, 500);
