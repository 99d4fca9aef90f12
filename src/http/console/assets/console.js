// devicegate console: progressive enhancement only. Every page works without this file (CSP script-src 'self'
// forbids inline scripts, so all behaviour lives here and is attached to data-* attributes).
'use strict';
(function () {
  function ready(fn) {
    if (document.readyState !== 'loading') fn();
    else document.addEventListener('DOMContentLoaded', fn);
  }

  ready(function () {
    // Move keyboard and screen-reader focus to an error summary, so the problem is announced first.
    var alertBox = document.querySelector('[data-autofocus]');
    if (alertBox && typeof alertBox.focus === 'function') alertBox.focus();

    // Copy buttons: <button data-copy-target="id" data-copied-text="Copied">.
    document.querySelectorAll('button[data-copy-target]').forEach(function (button) {
      button.hidden = false;
      button.addEventListener('click', function () {
        var target = document.getElementById(button.getAttribute('data-copy-target'));
        if (!target) return;
        var text = 'value' in target ? target.value : target.textContent;
        var done = function () {
          var label = button.textContent;
          button.textContent = button.getAttribute('data-copied-text') || label;
          setTimeout(function () { button.textContent = label; }, 2000);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(target); });
        } else {
          selectText(target);
          try { document.execCommand('copy'); done(); } catch (e) { /* the text stays selected for Ctrl+C */ }
        }
      });
    });

    // CSV import: read a chosen file into the textarea (the form itself posts text).
    document.querySelectorAll('input[type="file"][data-read-into]').forEach(function (input) {
      var wrapper = input.closest('[hidden]');
      if (wrapper) wrapper.hidden = false;
      input.addEventListener('change', function () {
        var file = input.files && input.files[0];
        var target = document.getElementById(input.getAttribute('data-read-into'));
        if (!file || !target) return;
        var reader = new FileReader();
        reader.onload = function () { target.value = String(reader.result); target.focus(); };
        reader.readAsText(file);
      });
    });
  });

  function selectText(el) {
    if (typeof el.select === 'function') { el.focus(); el.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
})();
