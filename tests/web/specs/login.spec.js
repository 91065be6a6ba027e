// @ts-check
// The page in a secure deployment (deploy/test-web.sh starts it beside the open one): people
// log in as web users of the deployment, each acting as her own tenant. A wrong password is
// refused in words; a marketer of one tenant imports a file; a marketer of another tenant,
// logged in on the same page, finds nothing of it, not even by its address; logging out
// closes the pages again. Every step is checked with axe and leaves a screenshot.
const { test, expect } = require("@playwright/test");
const { step } = require("../steps");
const path = require("path");

const fixtures = path.join(__dirname, "..", "fixtures");

const secure = process.env.SECURE_WEB_URL;
const password = process.env.WEB_USER_PASSWORD;
const acmeUser = process.env.WEB_USER_ACME;
const globexUser = process.env.WEB_USER_GLOBEX;

async function logIn(page, user, secret) {
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(secret);
  await page.getByRole("button", { name: "Log in" }).click();
}

test("each web user acts as her own tenant, and sees nothing of another's", async ({ browser }) => {
  expect(secure, "deploy/test-web.sh starts the secure deployment").toBeTruthy();

  // Anna, of acme: the first page asks her to log in, and says so when the password is wrong.
  const acme = await browser.newContext({ baseURL: secure });
  const anna = await acme.newPage();
  await anna.goto("/imports");
  await expect(anna).toHaveURL(/\/login\?next=\/imports$/);
  await expect(anna.getByRole("heading", { level: 1, name: "Log in" })).toBeVisible();
  await expect(anna.getByRole("navigation", { name: "Main" })).toHaveCount(0);
  await step(anna, "20-login");
  await logIn(anna, acmeUser, "not the password at all");
  await expect(anna.getByRole("alert")).toHaveText("The user name or the password is not right.");
  await expect(anna.getByLabel("User name")).toHaveValue(acmeUser);
  await step(anna, "21-login-refused");

  // Logged in, she is back where she was going, named in the header.
  await logIn(anna, acmeUser, password);
  await expect(anna).toHaveURL(/\/imports$/);
  await expect(anna.getByText(`Signed in as ${acmeUser}`)).toBeVisible();

  // She imports a file as acme.
  await anna.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Import contacts" }).click();
  await anna.getByLabel("CSV file").setInputFiles(path.join(fixtures, "kontakty-polskie.csv"));
  await anna.getByRole("button", { name: "Load the file" }).click();
  await expect(anna.getByRole("heading", { level: 1, name: "Fields mapping" })).toBeVisible();
  await anna.getByRole("button", { name: "IMPORT", exact: true }).click();
  await expect(anna).toHaveURL(/\/imports\/[0-9a-f-]+$/);
  await expect(anna.getByRole("heading", { name: "Summary" })).toBeVisible();
  const importPath = new URL(anna.url()).pathname;
  await step(anna, "22-signed-in-summary");

  // Gosia, of globex, in another browser: the list has none of it, and its address is not found.
  const globex = await browser.newContext({ baseURL: secure });
  const gosia = await globex.newPage();
  await gosia.goto("/imports");
  await logIn(gosia, globexUser, password);
  await expect(gosia.getByText(`Signed in as ${globexUser}`)).toBeVisible();
  await expect(gosia.getByRole("link", { name: "kontakty-polskie.csv" })).toHaveCount(0);
  const stranger = await gosia.goto(importPath);
  expect(stranger.status()).toBe(404);
  await expect(gosia.getByRole("alert")).toBeVisible();
  await step(gosia, "23-another-tenants-import");
  // Asked by her browser itself (her session cookie with it), every address of it is not found,
  // and it cannot be undone.
  const statusOf = (address, method = "GET") =>
    gosia.evaluate(async ([url, verb]) => (await fetch(url, { method: verb, redirect: "manual" })).status, [address, method]);
  for (const address of [`${importPath}/events`, `${importPath}/failed-rows.csv`, `${importPath}/fix`]) {
    expect(await statusOf(address), address).toBe(404);
  }
  expect(await statusOf(`${importPath}/undo`, "POST")).toBe(404);
  await gosia.goto("/contacts");
  await expect(gosia.getByText("No contact matches.")).toBeVisible();

  // Anna's import is still hers; logging out closes the pages again.
  await anna.reload();
  await expect(anna.getByRole("heading", { name: "Summary" })).toBeVisible();
  await anna.getByRole("button", { name: "Log out" }).click();
  await expect(anna).toHaveURL(/\/login$/);
  await anna.goto(importPath);
  await expect(anna).toHaveURL(/\/login\?next=/);
  await acme.close();
  await globex.close();
});
