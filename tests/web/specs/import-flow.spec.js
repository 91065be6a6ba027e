// @ts-check
// The marketer's whole flow through the import page, in a real browser, against the real
// services: sample file, a Polish file with bad rows, suggestions, a required attribute that
// blocks IMPORT, import, progress, summary, failed rows and their file, history, contacts,
// undo; the same flow with the keyboard alone; and what another account's import looks
// like. Every step is checked with axe
// (WCAG 2.1 AA) and leaves a screenshot in artifacts/.
const { test, expect } = require("@playwright/test");
const { step } = require("../steps");
const fs = require("fs");
const path = require("path");

const fixtures = path.join(__dirname, "..", "fixtures");

/** The rows of a CSV text written by the page (no quoted newlines in these files). */
function csvRows(text) {
  return text.replace(/^\uFEFF/, "").trim().split(/\r?\n/).map((line) => {
    const cells = [];
    let cell = "", quoted = false;
    for (let index = 0; index < line.length; index += 1) {
      const character = line[index];
      if (quoted) {
        if (character === '"' && line[index + 1] === '"') { cell += '"'; index += 1; }
        else if (character === '"') quoted = false;
        else cell += character;
      } else if (character === '"') quoted = true;
      else if (character === ",") { cells.push(cell); cell = ""; }
      else cell += character;
    }
    cells.push(cell);
    return cells;
  });
}

/**
 * Undoes the import whose page is open, as a marketer does: an undo goes a batch per step,
 * and she moves it on until it is done. `press` presses a button (a click unless told).
 */
async function undo(page, press = (button) => button.click()) {
  await press(page.getByRole("button", { name: "Undo this import" }));
  const state = page.getByRole("heading", { level: 2 }).first();
  await expect(state).toHaveText(/Undone|Being undone/);
  for (let steps = 0; (await state.textContent()).includes("Being undone") && steps < 20; steps += 1) {
    await press(page.getByRole("button", { name: "Go on with the undo" }));
  }
  await expect(state).toHaveText("Undone");
}

test("a marketer imports a Polish file with bad rows, end to end", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1, name: "Import contacts" })).toBeVisible();
  await step(page, "01-new-import");

  // The sample file names the account's attributes.
  const [sample] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download the sample file" }).click(),
  ]);
  const sampleText = fs.readFileSync(await sample.path(), "utf8");
  expect(csvRows(sampleText)[0]).toEqual(expect.arrayContaining(["email", "first_name", "city"]));

  // The choices, then the file.
  await page.getByLabel("Contact type").fill("lead");
  await page.getByLabel("Category").fill("targi");
  await page.getByLabel("Tags").fill("e2e, fair-2026");
  await page.getByLabel(/Link to the existing contact/).check();
  await page.getByLabel("CSV file").setInputFiles(path.join(fixtures, "kontakty-polskie.csv"));
  await page.getByRole("button", { name: "Load the file" }).click();

  // Fields mapping: the Polish headers are suggested, the bad values are named.
  await expect(page.getByRole("heading", { level: 1, name: "Fields mapping" })).toBeVisible();
  await expect(page.getByLabel("Adres e-mail")).toHaveValue("email");
  await expect(page.getByLabel("Imię")).toHaveValue("first_name");
  await expect(page.getByLabel("Miasto")).toHaveValue("city");
  await expect(page.getByLabel("Notatki")).toHaveValue("");
  await expect(page.getByText("“Adres e-mail” is a usual name for Email.")).toBeVisible();
  await expect(page.getByText(/looks like a phone number, not an email address/)).toBeVisible();
  await step(page, "02-mapping");

  // Without the email column, IMPORT is disabled and says why.
  const importButton = page.getByRole("button", { name: "IMPORT", exact: true });
  await page.getByLabel("Adres e-mail").selectOption("");
  await expect(importButton).toBeDisabled();
  await expect(page.getByText("Email is required: choose the column that holds it.")).toBeVisible();
  await step(page, "03-mapping-blocked");
  await page.getByLabel("Adres e-mail").selectOption("email");
  await expect(importButton).toBeEnabled();

  await importButton.click();
  await expect(page).toHaveURL(/\/imports\/[0-9a-f-]+$/);
  const importUrl = page.url();
  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  await step(page, "04-summary");

  // 6 rows: 3 created, 1 linked (Anna again), 2 failed (a phone in the email column, a date
  // that is not one), as the services counted them.
  const counter = (name) => page.locator(".counters div").filter({ hasText: name }).locator("dd");
  await expect(counter("Rows")).toHaveText("6");
  await expect(counter("Created")).toHaveText("3");
  await expect(counter("Linked")).toHaveText("1");
  await expect(counter("Failed")).toHaveText("2");
  const failed = page.getByRole("region", { name: "Failed rows", exact: true });
  await expect(failed).toContainText("looks like a phone number, not an email address");
  await expect(failed).toContainText("1992-13-45");

  // The error file is the failed rows as they stood, with line, column and reason.
  const [errorFile] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download the failed rows" }).click(),
  ]);
  const rows = csvRows(fs.readFileSync(await errorFile.path(), "utf8"));
  const source = fs.readFileSync(path.join(fixtures, "kontakty-polskie.csv"), "utf8").trim().split("\n").map((line) => line.split(";"));
  expect(rows[0]).toEqual([...source[0], "line", "column", "reason"]);
  // Cells a spreadsheet would run as a formula (here "+48 ...") come guarded by an apostrophe,
  // which the import drops again when the fixed file comes back.
  const guarded = (cell) => (/^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell);
  expect(rows.slice(1).map((row) => row.slice(0, source[0].length)))
    .toEqual([source[2].map(guarded), source[4].map(guarded)]);
  expect(rows.slice(1).map((row) => row[source[0].length])).toEqual(["3", "5"]);

  // History lists it; the contact manager shows what it created.
  await page.getByRole("link", { name: "Contacts import" }).click();
  await expect(page.getByRole("link", { name: "kontakty-polskie.csv" }).first()).toBeVisible();
  await step(page, "05-history");
  await page.goto(importUrl);
  await page.getByRole("link", { name: "See its contacts" }).click();
  const contacts = page.getByRole("region", { name: "Contacts", exact: true });
  await expect(contacts).toContainText("Łódź");
  await expect(contacts).toContainText("Wiśniewski");
  await expect(contacts).not.toContainText("Zieliński");
  await step(page, "06-contacts");

  // Undo brings the account back to before the import.
  await page.goto(importUrl);
  await undo(page);
  await expect(page.getByText("This import was undone")).toBeVisible();
  await expect(page.getByRole("link", { name: "See its contacts" })).toHaveCount(0);
  await step(page, "07-undone");
  // The contacts it created are gone from the contact manager.
  await page.getByRole("link", { name: "Contact manager" }).click();
  await expect(page.getByText("No contact matches.")).toBeVisible();
});

test("another account's import, a tampered draft and a cross-site form are refused", async ({ page, request }) => {
  const stranger = await page.goto("/imports/5b1c2a8e-0000-4000-8000-000000000000");
  expect(stranger.status()).toBe(404);
  await expect(page.getByRole("alert")).toBeVisible();
  await step(page, "08-not-found");
  const events = await request.get("/imports/5b1c2a8e-0000-4000-8000-000000000000/events");
  expect(events.status()).toBe(404);
  const fix = await request.get("/imports/5b1c2a8e-0000-4000-8000-000000000000/fix");
  expect(fix.status()).toBe(404);

  const tampered = await page.goto("/mapping?draft=e30.AAAA");
  expect(tampered.status()).toBe(400);
  await expect(page.getByRole("alert")).toContainText("load the file again");

  const forged = await request.post("/imports/5b1c2a8e-0000-4000-8000-000000000000/cancel", {
    headers: { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" },
  });
  expect(forged.status()).toBe(403);
});

test("an empty file is refused with the reason and the choices kept", async ({ page }) => {
  await page.goto("/");
  await page.getByLabel("Tags").fill("kept-tag");
  await page.getByLabel("CSV file").setInputFiles({ name: "pusty.csv", mimeType: "text/csv", buffer: Buffer.alloc(0) });
  await page.getByRole("button", { name: "Load the file" }).click();
  await expect(page.getByRole("alert")).toContainText("pusty.csv is empty");
  await expect(page.getByLabel("Tags")).toHaveValue("kept-tag");
  await step(page, "09-empty-file");
});

test("a spreadsheet instead of a CSV file is refused in words", async ({ page }) => {
  await page.goto("/");
  // The start of an .xlsx file: a ZIP archive.
  const xlsx = Buffer.concat([Buffer.from("PK\u0003\u0004"), Buffer.alloc(200, 7)]);
  await page.getByLabel("CSV file").setInputFiles({ name: "kontakty.xlsx", mimeType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", buffer: xlsx });
  await page.getByRole("button", { name: "Load the file" }).click();
  await expect(page.getByRole("alert")).toContainText("kontakty.xlsx cannot be imported");
  await step(page, "10-spreadsheet");
});

test("a file over the size limit is refused in words, by the page and by the server", async ({ page }) => {
  // deploy/test-web.sh serves the page with a limit of 1 MiB.
  const big = Buffer.concat([Buffer.from("email;first_name\n"), Buffer.alloc(2 * 1024 * 1024, "a")]);
  await page.goto("/");
  await page.getByLabel("CSV file").setInputFiles({ name: "duzy.csv", mimeType: "text/csv", buffer: big });
  await page.getByRole("button", { name: "Load the file" }).click();
  await expect(page.getByRole("alert")).toContainText("duzy.csv is 2 MB");
  await expect(page.getByRole("alert")).toContainText("Split it into smaller files");
  await step(page, "11-too-large");
  // Without the page's script the server itself refuses it, before storing anything.
  const answer = await page.request.post("/uploads", {
    multipart: { file: { name: "duzy.csv", mimeType: "text/csv", buffer: big } },
  });
  expect(answer.status()).toBeLessThan(500);
  expect(await answer.text()).toContain("larger than");
});

/** The contact manager's table as one object per row, keyed by column heading. */
async function contactRows(page) {
  const table = page.getByRole("region", { name: "Contacts", exact: true }).locator("table");
  const headings = await table.locator("thead th").allTextContents();
  const rows = await table.locator("tbody tr").evaluateAll((trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent)));
  return rows.map((cells) => Object.fromEntries(headings.map((heading, index) => [heading, cells[index]])));
}

test("a file's own spellings of choice values are mapped, and a column named like an attribute is left out", async ({ page }) => {
  // deploy/test-web.sh gave the account the enum "gender" (F, M; labelled Płeć) and the
  // boolean "newsletter".
  await page.goto("/");
  await page.getByLabel("CSV file").setInputFiles(path.join(fixtures, "plec-i-zgody.csv"));
  await page.getByRole("button", { name: "Load the file" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Fields mapping" })).toBeVisible();
  await expect(page.getByLabel("Płeć", { exact: true })).toHaveValue("gender");
  await expect(page.getByLabel("Newsletter", { exact: true })).toHaveValue("newsletter");

  // The column named "city" fills City unless she says otherwise; she keeps it out.
  await expect(page.getByLabel("city", { exact: true })).toHaveValue("city");
  await page.getByLabel("city", { exact: true }).selectOption("");

  // Each value the attribute does not allow is listed once, "K" and "k" as one; the
  // obvious one is suggested.
  const values = page.getByRole("region", { name: "Values to map" });
  await expect(values.getByRole("table", { name: /“Płeć” as Płeć/ })).toBeVisible();
  await expect(values.getByLabel("“K”", { exact: true })).toHaveValue("");
  await expect(values.getByLabel("“k”", { exact: true })).toHaveCount(0);
  await expect(values.getByLabel("“ja”", { exact: true })).toHaveValue("true");
  // "x" means yes in some exports and nothing in others: nothing is suggested for it.
  await expect(values.getByLabel("“x”", { exact: true })).toHaveValue("");
  await values.getByLabel("“K”", { exact: true }).selectOption("F");
  await values.getByLabel("“kobieta”", { exact: true }).selectOption("F");
  await values.getByLabel("“mężczyzna”", { exact: true }).selectOption("M");
  // Read again: her choices stay, "x" left as it is included, and the column stays out.
  await page.getByRole("button", { name: "Read again" }).click();
  await expect(values.getByLabel("“K”", { exact: true })).toHaveValue("F");
  await expect(values.getByLabel("“x”", { exact: true })).toHaveValue("");
  await expect(page.getByLabel("city", { exact: true })).toHaveValue("");
  await step(page, "12-values-to-map");

  await page.getByRole("button", { name: "IMPORT", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  const counter = (name) => page.locator(".counters div").filter({ hasText: name }).locator("dd");
  await expect(counter("Created")).toHaveText("4");
  await expect(counter("Failed")).toHaveText("1");
  // "x" was left as it is: its row fails, with the reason.
  await expect(page.getByRole("region", { name: "Failed rows", exact: true })).toContainText("not yes or no");

  await page.getByRole("link", { name: "See its contacts" }).click();
  const byEmail = Object.fromEntries((await contactRows(page)).map((row) => [row.Email, row]));
  expect(Object.keys(byEmail).sort()).toEqual(["adam@example.pl", "ewa@example.pl", "iza@example.pl", "ula@example.pl"]);
  expect(["ewa@example.pl", "adam@example.pl", "iza@example.pl", "ula@example.pl"].map((email) =>
    [byEmail[email]["Płeć"], byEmail[email].Newsletter])).toEqual([["F", "true"], ["M", "false"], ["F", "true"], ["F", "true"]]);
  expect(Object.values(byEmail).map((row) => row.City)).toEqual(["", "", "", ""]);
  await step(page, "13-mapped-contacts");
});

test("a file with the columns of an earlier import opens with that import's mapping", async ({ page }) => {
  const upload = async (name, text) => {
    await page.goto("/");
    await page.getByLabel("CSV file").setInputFiles({ name, mimeType: "text/csv", buffer: Buffer.from(text) });
    await page.getByRole("button", { name: "Load the file" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Fields mapping" })).toBeVisible();
  };
  const counter = (name) => page.locator(".counters div").filter({ hasText: name }).locator("dd");

  // March: she keeps the town out and reads K and "kobieta" as F.
  await upload("zapisy-marzec.csv", "E-mail;Płeć;Miasto\nala@zapisy.pl;K;Łódź\nbea@zapisy.pl;kobieta;Opole\nczes@zapisy.pl;M;Gniezno\n");
  await expect(page.locator("#remembered")).toHaveCount(0);
  await page.getByLabel("Miasto", { exact: true }).selectOption("");
  const values = page.getByRole("region", { name: "Values to map" });
  await values.getByLabel("“K”", { exact: true }).selectOption("F");
  await values.getByLabel("“kobieta”", { exact: true }).selectOption("F");
  await page.getByRole("button", { name: "IMPORT", exact: true }).click();
  await expect(counter("Created")).toHaveText("3");

  // April: the same columns in another order, "k" written small, and no "kobieta" in it.
  await upload("zapisy-kwiecien.csv", "Miasto;Płeć;E-mail\nToruń;k;dora@zapisy.pl\nKalisz;M;edek@zapisy.pl\n");
  const notice = page.locator("#remembered");
  await expect(notice).toContainText("the mapping of zapisy-marzec.csv");
  await expect(notice).toContainText("“kobieta” as “F” (Płeć)");
  await expect(page.getByLabel("Miasto", { exact: true })).toHaveValue("");
  await expect(page.getByLabel("Płeć", { exact: true })).toHaveValue("gender");
  await expect(page.getByLabel("E-mail", { exact: true })).toHaveValue("email");
  await expect(values.getByLabel("“k”", { exact: true })).toHaveValue("F");
  await expect(page.getByText("As in your import of zapisy-marzec.csv.")).toHaveCount(3);
  await step(page, "14-remembered-mapping");

  // Her change wins over the remembered one, and survives reading the file again.
  await page.getByLabel("Miasto", { exact: true }).selectOption("city");
  await page.getByRole("button", { name: "Read again" }).click();
  await expect(page.getByLabel("Miasto", { exact: true })).toHaveValue("city");
  await expect(page.getByText("As in your import of zapisy-marzec.csv.")).toHaveCount(2);
  await page.getByRole("button", { name: "IMPORT", exact: true }).click();
  await expect(counter("Created")).toHaveText("2");
  await expect(counter("Failed")).toHaveText("0");
  await page.getByRole("link", { name: "See its contacts" }).click();
  const byEmail = Object.fromEntries((await contactRows(page)).map((row) => [row.Email, row]));
  expect([byEmail["dora@zapisy.pl"]["Płeć"], byEmail["dora@zapisy.pl"].City]).toEqual(["F", "Toruń"]);
  expect([byEmail["edek@zapisy.pl"]["Płeć"], byEmail["edek@zapisy.pl"].City]).toEqual(["M", "Kalisz"]);
});

/**
 * Presses Tab (or Shift+Tab) until `target` holds the focus, as someone without a mouse would,
 * and checks that the focus can be seen there; fails when Tab never reaches it.
 */
async function tabTo(page, target, { back = false, most = 60 } = {}) {
  for (let presses = 0; presses < most; presses += 1) {
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    if (await target.evaluate((element) => element === document.activeElement)) {
      const outline = await target.evaluate((element) => getComputedStyle(element).outlineStyle);
      expect(outline, "the control with the focus shows it").not.toBe("none");
      return;
    }
  }
  throw new Error(`Tab never reached ${target}`);
}

test("the whole flow with the keyboard alone", async ({ page }) => {
  await page.goto("/");
  // The first Tab offers the skip link, which leads past the navigation.
  const skip = page.getByRole("link", { name: "Skip to content" });
  await tabTo(page, skip);
  await expect(skip).toBeInViewport();
  await step(page, "20-keyboard-skip-link");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/#main$/);

  await tabTo(page, page.getByLabel("Contact type"));
  await page.keyboard.type("lead");
  await tabTo(page, page.getByLabel("Category"));
  await page.keyboard.type("klawiatura");
  await tabTo(page, page.getByLabel("Tags"));
  await page.keyboard.type("keyboard");
  // A radio group is one Tab stop; the arrow keys move the choice within it.
  const link = page.getByLabel(/Link to the existing contact/);
  await tabTo(page, link);
  await page.keyboard.press("ArrowDown");
  const separate = page.getByLabel(/separate contact/);
  await expect(separate).toBeChecked();
  await expect(separate).toBeFocused();
  await page.keyboard.press("ArrowUp");
  await expect(link).toBeChecked();
  // The file field opens the file chooser from the keyboard.
  await tabTo(page, page.getByLabel("CSV file"));
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Space")]);
  await chooser.setFiles(path.join(fixtures, "kontakty-polskie.csv"));
  await step(page, "21-keyboard-new-import");
  await tabTo(page, page.getByRole("button", { name: "Load the file" }));
  await page.keyboard.press("Enter");

  await expect(page.getByRole("heading", { level: 1, name: "Fields mapping" })).toBeVisible();
  // Moving through the separators with the arrow keys does not reload the page under her
  // (WCAG 3.2.2): she reads the file again when she asks to.
  const separator = page.getByLabel("Separator");
  await tabTo(page, separator);
  await page.keyboard.press("ArrowUp");
  await expect(separator).toHaveValue(",");
  await expect(separator).toBeFocused();
  await page.keyboard.press("ArrowDown");
  await expect(separator).toHaveValue(";");
  await tabTo(page, page.getByRole("button", { name: "Read again" }));
  await page.keyboard.press("Enter");
  await expect(page.getByLabel("Adres e-mail")).toHaveValue("email");

  // Dropping the email column from the keyboard blocks IMPORT and says why; choosing it again
  // by typing its name frees it.
  const email = page.getByLabel("Adres e-mail");
  await tabTo(page, email);
  await page.keyboard.press("Home");
  await expect(email).toHaveValue("");
  const importButton = page.getByRole("button", { name: "IMPORT", exact: true });
  await expect(importButton).toBeDisabled();
  await expect(page.getByText("Email is required: choose the column that holds it.")).toBeVisible();
  await step(page, "22-keyboard-mapping-blocked");
  await page.keyboard.type("Email");
  await expect(email).toHaveValue("email");
  await expect(importButton).toBeEnabled();
  await tabTo(page, importButton);
  await step(page, "23-keyboard-mapping");
  await page.keyboard.press("Enter");

  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  const counter = (name) => page.locator(".counters div").filter({ hasText: name }).locator("dd");
  await expect(counter("Rows")).toHaveText("6");
  await expect(counter("Failed")).toHaveText("2");
  await step(page, "24-keyboard-summary");

  // The navigation and the undo are reached the same way; the undo leaves the account as it
  // was for the other tests.
  await undo(page, async (button) => {
    await tabTo(page, button);
    await page.keyboard.press("Enter");
  });
  await tabTo(page, page.getByRole("link", { name: "Contacts import" }), { back: true });
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { level: 1, name: "Contacts import" })).toBeVisible();
});

test("failed rows are fixed in the page and imported again with the first import's options", async ({ page }) => {
  await page.goto("/");
  await page.getByLabel("Contact type").fill("lead");
  await page.getByLabel("Tags").fill("poprawki");
  await page.getByLabel("CSV file").setInputFiles(path.join(fixtures, "kontakty-polskie.csv"));
  await page.getByRole("button", { name: "Load the file" }).click();
  await page.getByRole("button", { name: "IMPORT", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  const firstUrl = page.url();
  const counter = (name) => page.locator(".counters div").filter({ hasText: name }).locator("dd");
  await expect(counter("Failed")).toHaveText("2");

  // Each failed row as fields, the failing cell marked and described by its reason.
  await page.getByRole("link", { name: "fix them here" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Fix the failed rows of kontakty-polskie.csv" })).toBeVisible();
  const email = page.getByLabel("Adres e-mail, line 3");
  await expect(email).toHaveValue("+48 501 234 567");
  await expect(email).toHaveAttribute("aria-invalid", "true");
  await expect(email).toHaveAccessibleDescription(/looks like a phone number, not an email address/);
  await expect(page.getByLabel("Data urodzenia, line 5")).toHaveValue("1992-13-45");
  await expect(page.getByLabel("Imię, line 3")).not.toHaveAttribute("aria-invalid", "true");
  await step(page, "15-fix-failed-rows");

  // She fixes Piotr's email and leaves Zofia's row for later.
  await email.fill("piotr.zielinski@example.pl");
  await page.getByLabel("Import line 5").uncheck();
  await page.getByRole("button", { name: "Import the fixed rows" }).click();

  await expect(page.getByRole("heading", { name: "Summary" })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "These are rows you fixed from the import of" })).toBeVisible();
  await expect(counter("Rows")).toHaveText("1");
  await expect(counter("Created")).toHaveText("1");
  await expect(counter("Failed")).toHaveText("0");
  await step(page, "16-fixed-rows-imported");
  const fixedUrl = page.url();

  // The fixed row got the first import's choices: its type and tag.
  await page.getByRole("link", { name: "See its contacts" }).click();
  const contacts = page.getByRole("region", { name: "Contacts", exact: true });
  await expect(contacts).toContainText("piotr.zielinski@example.pl");
  await expect(contacts).toContainText("poprawki");
  await expect(contacts).toContainText("lead");
  await expect(contacts).not.toContainText("zofia@example.pl");

  // Both undone, so that the other tests find the account as it was.
  await page.goto(fixedUrl);
  await undo(page);
  await page.goto(firstUrl);
  await undo(page);
});
