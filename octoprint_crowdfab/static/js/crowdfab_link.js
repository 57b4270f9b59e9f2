/*
 * CrowdFab: what the link to the fleet means for the user (shared by the navbar, the Fablab tab and the
 * wizard), and the first-run wizard that asks for the fleet's address and the code and tries them at once.
 */
(function (global) {
    "use strict";

    // Texts are looked up when used, so they follow the catalogue OctoPrint loaded for the page.
    function problemText(status) {
        var when = status.next_try_at ? new Date(status.next_try_at * 1000).toLocaleTimeString() : "";
        switch (status.problem) {
            case "not_set_up":
                return gettext(
                    "Not set up yet: give the fleet's address and the code a fleet manager gave you (Settings > CrowdFab)."
                );
            case "unreachable":
                return _.sprintf(
                    gettext(
                        "The fleet cannot be reached at %(url)s. Check the address and this printer's network; next try at %(time)s."
                    ),
                    {url: status.fleet_url, time: when}
                );
            case "code":
                return gettext(
                    "The fleet refused the enrollment code: it is unknown, already used or expired. Ask a fleet manager for a new code."
                );
            case "name":
                return gettext(
                    "The fleet already has a printer of this name: change the printer's name in OctoPrint's appearance settings, or ask a fleet manager."
                );
            case "refused":
                return gettext("The fleet refused to enroll this printer; its answer says why.");
            case "node":
                return gettext("Enrolled, but the connection to the fleet could not be started.");
            default:
                return "";
        }
    }

    global.CrowdFabLink = {problemText: problemText};
})(window);

$(function () {
    "use strict";

    var PLUGIN = "crowdfab";
    var POLL_MS = 1000;
    //: How long the wizard watches one try before saying it is still going (the plugin keeps at it).
    var WATCH_MS = 30000;
    var SETTLED = ["online", "unreachable", "refused", "broken", "offline"];

    function CrowdFabWizardViewModel(parameters) {
        var self = this;
        self.settings = parameters[0];

        self.fleetUrl = ko.observable("");
        self.code = ko.observable("");
        self.busy = ko.observable(false);
        self.result = ko.observable("");
        self.fleetWords = ko.observable("");
        self.joined = ko.observable(false);

        self.canJoin = ko.pureComputed(function () {
            return !self.busy() && !!self.fleetUrl().trim() && !!self.code().trim();
        });
        self.resultClass = ko.pureComputed(function () {
            if (self.joined()) return "alert-success";
            return self.busy() ? "alert-info" : "alert-error";
        });

        var started = 0;
        function watch() {
            OctoPrint.simpleApiGet(PLUGIN)
                .done(function (status) {
                    if (SETTLED.indexOf(status.link) < 0 || (status.link === "offline" && !status.printer_id)) {
                        if (Date.now() - started < WATCH_MS) {
                            setTimeout(watch, POLL_MS);
                            return;
                        }
                        self.result(gettext("Still trying; the Fablab tab shows how it goes."));
                        self.busy(false);
                        return;
                    }
                    self.busy(false);
                    if (status.link === "online" || status.link === "offline") {
                        self.joined(true);
                        self.fleetWords("");
                        self.result(_.sprintf(gettext("Joined the fleet as %(id)s."), {id: status.printer_id}));
                    } else {
                        self.result(describeProblem(status));
                        self.fleetWords(status.error || "");
                    }
                })
                .fail(function () {
                    self.busy(false);
                    self.result(gettext("Could not reach this plugin's status; retrying."));
                });
        }
        function describeProblem(status) {
            return window.CrowdFabLink.problemText(status) || status.error || status.link;
        }

        self.join = function () {
            if (!self.canJoin()) return;
            self.busy(true);
            self.joined(false);
            self.fleetWords("");
            self.result(gettext("Trying the fleet…"));
            started = Date.now();
            OctoPrint.simpleApiCommand(PLUGIN, "enroll", {
                fleet_url: self.fleetUrl().trim(),
                enroll_code: self.code().trim()
            })
                .done(function () {
                    setTimeout(watch, POLL_MS);
                })
                .fail(function (xhr) {
                    self.busy(false);
                    var json = xhr && xhr.responseJSON;
                    self.result((json && json.error) || gettext("no answer"));
                });
        };

        self.onBeforeWizardTabChange = function () {
            return !self.busy();
        };
        self.onWizardShow = function () {
            var plugin = self.settings.settings.plugins.crowdfab;
            if (plugin && !self.fleetUrl()) self.fleetUrl(plugin.fleet_url() || "");
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: CrowdFabWizardViewModel,
        dependencies: ["settingsViewModel"],
        elements: ["#wizard_plugin_crowdfab"]
    });
});
