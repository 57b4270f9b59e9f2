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
                    "The fleet does not know this enrollment code: check it for typing mistakes, or ask a fleet manager for a new code."
                );
            case "code_used":
                return gettext(
                    "This enrollment code was already used to enroll a printer: a code works once. Ask a fleet manager for a new code."
                );
            case "code_expired":
                return gettext("This enrollment code has expired. Ask a fleet manager for a new code.");
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

    // What the fleet says a queued job needs that this printer's profile lacks, from its key and values
    // (the fleet's English words only when it sends a key this version does not know).
    function unfitText(unfit) {
        var params = unfit.params || {};
        switch (unfit.key) {
            case "too_small":
                return _.sprintf(gettext("%(needed)s needed, this profile gives %(have)s"), params);
            case "round_bed":
                return _.sprintf(gettext("%(needed)s needed: its corners stick out of this profile's round bed"), params);
            case "no_heated_bed":
                return gettext("it heats the bed, and this profile has no heated bed");
            case "no_heated_chamber":
                return gettext("it heats the chamber, and this profile has no heated chamber");
            case "too_few_extruders":
                return _.sprintf(
                    params.extruders === 1
                        ? gettext("it uses %(tools)s tools, and this profile has 1 extruder")
                        : gettext("it uses %(tools)s tools, and this profile has %(extruders)s extruders"),
                    params
                );
            default:
                return unfit.reason;
        }
    }

    // What is wrong with the owner's lending terms: the setting, the piece at fault, and the fault.
    function lendingProblemText(problem) {
        if (!problem) return "";
        var params = problem.params || {};
        var faults = {
            lending_shape: gettext("it must read like mon-fri 20:00-08:00 (days, a space, then the hours)"),
            lending_day: _.sprintf(gettext("%(day)s is not a day (mon, tue, wed, thu, fri, sat, sun)"), params),
            lending_time: gettext("a time must read like 20:00, from 00:00 to 24:00, and a window starts before 24:00"),
            lending_empty: _.sprintf(gettext("the window is empty: it starts and ends at %(time)s"), params),
            lending_overlap: _.sprintf(gettext("windows %(first)s and %(second)s overlap"), params),
            lending_zone_missing: gettext("give a time zone such as Europe/Paris"),
            lending_zone_unknown: _.sprintf(gettext("unknown time zone %(zone)s (use a name such as Europe/Paris)"), params),
            lending_materials: gettext("give material names such as PLA, separated by commas"),
            lending_too_many: _.sprintf(gettext("at most %(max)s windows"), params)
        };
        var settings = {
            windows: gettext("lending hours"),
            time_zone: gettext("lending time zone"),
            materials: gettext("lending materials")
        };
        var where = settings[problem.setting] || gettext("lending terms");
        if (problem.piece) where += " '" + problem.piece + "'";
        return _.sprintf(gettext("%(where)s: %(fault)s"), {where: where, fault: faults[problem.key] || problem.key});
    }

    // Why the last photo of the plate did not reach the fleet, from the node's key and values.
    function plateProblemText(problem) {
        var params = problem.params || {};
        switch (problem.key) {
            case "webcam_login":
                return _.sprintf(
                    gettext("the webcam refused the login (HTTP %(status)s): check the snapshot URL's authentication in OctoPrint's webcam settings"),
                    params
                );
            case "webcam_status":
                return _.sprintf(gettext("the webcam answered HTTP %(status)s"), params);
            case "webcam_unreachable":
                return gettext("the webcam's snapshot URL could not be reached");
            case "webcam_not_image":
                return gettext("the webcam's snapshot URL sent no JPEG or PNG image");
            case "webcam_too_large":
                return _.sprintf(gettext("the webcam's photo is larger than %(max)s bytes"), params);
            case "fleet_refused":
                return gettext("the fleet did not take the photo");
            default:
                return problem.text;
        }
    }

    var DAY_KEYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    function dayShort(index) {
        return [gettext("Mon"), gettext("Tue"), gettext("Wed"), gettext("Thu"), gettext("Fri"), gettext("Sat"),
            gettext("Sun")][index];
    }
    function dayLong(index) {
        return [gettext("Monday"), gettext("Tuesday"), gettext("Wednesday"), gettext("Thursday"), gettext("Friday"),
            gettext("Saturday"), gettext("Sunday")][index];
    }
    // "Mon–Fri", "Sat, Sun": runs of three days or more as a range.
    function daysText(days) {
        var indexes = _.sortBy(_.map(days, function (d) { return DAY_KEYS.indexOf(d); }));
        var parts = [];
        var i = 0;
        while (i < indexes.length) {
            var j = i;
            while (j + 1 < indexes.length && indexes[j + 1] === indexes[j] + 1) j++;
            if (j - i >= 2) {
                parts.push(dayShort(indexes[i]) + "–" + dayShort(indexes[j]));
            } else {
                for (var k = i; k <= j; k++) parts.push(dayShort(indexes[k]));
            }
            i = j + 1;
        }
        return parts.join(", ");
    }
    // "Mon–Fri 20:00–08:00; Sat, Sun 08:00–24:00 (Europe/Paris), for PLA, PETG".
    function termsText(terms) {
        var windows = _.map(terms.windows || [], function (w) {
            return daysText(w.days) + " " + w.start + "–" + w.end;
        }).join("; ");
        var text = windows + " (" + terms.time_zone + ")";
        if (terms.materials && terms.materials.length) {
            text += ", " + _.sprintf(gettext("for %(materials)s"), {materials: terms.materials.join(", ")});
        } else {
            text += ", " + gettext("any material");
        }
        return text;
    }
    function lentNowText(terms) {
        if (terms.lent_now) {
            if (!terms.until) return gettext("Lent now, all week.");
            return _.sprintf(gettext("Lent now, until %(day)s %(time)s."), {
                day: dayLong(terms.until.weekday),
                time: terms.until.time
            });
        }
        if (!terms.next) return gettext("Not lent: the terms name no hour.");
        return _.sprintf(gettext("Not lent now; the next window opens %(day)s %(time)s."), {
            day: dayLong(terms.next.weekday),
            time: terms.next.time
        });
    }

    // The fleet's own words (English) are worth showing beside the explanation only when it says less than
    // they do: a refusal of another kind, or the details of why the fleet could not be reached.
    var SAID_IN_FULL = ["code", "code_used", "code_expired", "name"];
    function errorDetails(status) {
        return SAID_IN_FULL.indexOf(status.problem) >= 0 ? "" : status.error || "";
    }

    global.CrowdFabLink = {
        problemText: problemText,
        errorDetails: errorDetails,
        unfitText: unfitText,
        lendingProblemText: lendingProblemText,
        termsText: termsText,
        plateProblemText: plateProblemText,
        lentNowText: lentNowText
    };
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
                        self.fleetWords(window.CrowdFabLink.errorDetails(status));
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
