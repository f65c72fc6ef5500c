// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Focus where the problem is, so keyboard and screen-reader users land
  // there: the page marks it with autofocus (which works without this
  // file), else the first field with an error.
  var problem = document.querySelector("[autofocus]") || document.querySelector("[aria-invalid=true]");
  if (problem && document.activeElement !== problem) { problem.focus(); }

  // Show/hide password buttons.
  Array.prototype.forEach.call(document.querySelectorAll("input[type=password]"), function (input) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = "Показать пароль";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      var shown = input.type === "text";
      input.type = shown ? "password" : "text";
      button.textContent = shown ? "Показать пароль" : "Скрыть пароль";
      button.setAttribute("aria-pressed", shown ? "false" : "true");
    });
    input.insertAdjacentElement("afterend", button);
  });

  // "Возможно, вы имели в виду …?": one click puts the suggestion in the field.
  Array.prototype.forEach.call(document.querySelectorAll("[data-suggestion]"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function (event) {
      var field = document.getElementById(button.getAttribute("data-for"));
      if (field) {
        // Without JavaScript the button submits the form with the
        // suggestion; with it, the field takes the suggestion in place.
        event.preventDefault();
        field.value = button.getAttribute("data-suggestion");
        field.removeAttribute("aria-invalid");
        field.focus();
      }
      button.hidden = true;
    });
  });

  // Countdown to the moment the cabinet opens. It changes every second, so
  // it is not a live region (a screen reader would say it every second);
  // only the final «Готово» goes to the status region next to it, once.
  Array.prototype.forEach.call(document.querySelectorAll("time[data-countdown]"), function (time) {
    var target = Date.parse(time.getAttribute("datetime"));
    var output = document.getElementById(time.getAttribute("data-countdown"));
    var done = document.getElementById(time.getAttribute("data-countdown") + "-done");
    if (!output || !done || isNaN(target)) { return; }
    function tick() {
      var left = Math.max(0, Math.round((target - Date.now()) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      if (left > 0) {
        output.textContent = "Осталось " + minutes + " мин " + (seconds < 10 ? "0" : "") + seconds + " с.";
        setTimeout(tick, 1000);
      } else {
        output.hidden = true;
        done.textContent = time.getAttribute("data-done") || "Готово — можно входить.";
      }
    }
    tick();
  });
})();
